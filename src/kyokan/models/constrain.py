"""Grammar-constrained decoding for local models (the ``hf:`` and packaged backends), with
llguidance: a JSON schema becomes a grammar, and at every step the tokens that cannot continue a
valid answer are masked out before sampling, so the answer always parses under the schema.

Why llguidance (bench/models_constrained.py prints the figures): it is one of the two engines vLLM
runs (``guidance``; xgrammar is the other), supports the JSON-schema features kyokan's schemas use
(enums, required properties, ``maxLength``), is a 7.6 MB wheel with no dependencies and imports
in 0.01 s; xgrammar measured the same per-token cost here (0.2–0.3 ms per token on SmolLM2's
49k vocabulary, against ~30 ms for the model's own step) but declares ``triton`` (a 1 GB wheel
of GPU kernels) as a hard dependency even on CPU machines, and imports in about 1 s.

The same logits processor also records token log-probabilities (the top ``k`` after the grammar
mask and before sampling), which the judge turns into probability-weighted scores.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from kyokan.models.base import ModelError, TokenLogprob

ENGINE = "llguidance"
#: JSON layout the grammar allows: one line, ``json.dumps``' default separators
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _llg() -> Any:
    try:
        import llguidance
        import llguidance.hf
    except ImportError as e:  # pragma: no cover - llguidance is in the models extra
        raise ModelError("constrained decoding needs llguidance: pip install 'kyokan[models]'") from e
    return llguidance


def engine_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(ENGINE)
    except PackageNotFoundError:  # pragma: no cover
        return None


@lru_cache(maxsize=64)
def _grammar(schema_json: str) -> str:
    llg = _llg()
    return str(llg.LLMatcher.grammar_from_json_schema(schema_json, defaults=JSON_OPTIONS))


def schema_grammar(schema: dict[str, Any]) -> str:
    """The llguidance grammar of a JSON schema (cached by the schema's canonical JSON)."""
    return _grammar(json.dumps(schema, sort_keys=True, ensure_ascii=False))


class Grammars:
    """One tokenizer's grammar engine: the llguidance tokenizer (about 1 s to build, so once per
    model) and matchers for schemas."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]) -> None:
        llg = _llg()
        self._llg = llg
        self.vocab_size = vocab_size
        self.tokenizer = llg.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size, eos_token=list(eos_ids) or None)
        self._lock = threading.Lock()

    def matcher(self, schema: dict[str, Any]) -> Any:
        grammar = schema_grammar(schema)
        m = self._llg.LLMatcher(self.tokenizer, grammar, log_level=0)
        if m.is_error():
            raise ModelError(f"constrained decoding: the JSON schema cannot be enforced: {m.get_error()}")
        return m

    def check(self, schema: dict[str, Any]) -> None:
        """Raise ModelError now if ``schema`` cannot be compiled (before any generation)."""
        self.matcher(schema)


class ConstrainedLogits:
    """A transformers logits processor for one ``generate`` call: per row, an optional grammar
    matcher (None = free decoding) and, when ``top_k > 0``, log-prob recording.

    Rows that finished (emitted an end-of-sequence id) are left alone; the grammar allows the end
    of sequence only once the answer is complete, so a constrained row that stops has a valid
    answer, and one cut at ``max_new_tokens`` is reported as ``length`` by the backend.
    """

    def __init__(self, matchers: Sequence[Any | None], prompt_len: int, eos_ids: Sequence[int],
                 top_k: int = 0) -> None:
        import torch

        self.matchers = list(matchers)
        self.prompt_len = prompt_len
        self.eos = set(eos_ids)
        self.top_k = top_k
        n = len(self.matchers)
        self.done = [False] * n
        #: per row: (chosen token id, its logprob, [(alt id, logprob), ...]) per step
        self.steps: list[list[tuple[int, float, list[tuple[int, float]]]]] = [[] for _ in range(n)]
        self._pending: list[list[tuple[int, float]] | None] = [None] * n
        self._last_lsm: Any = None
        self.rejected = 0
        self._torch = torch

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self._torch
        step = input_ids.shape[1] - self.prompt_len
        if step > 0:
            last = input_ids[:, -1].tolist()
            for i, tok in enumerate(last):
                if self.done[i]:
                    continue
                self._record(i, tok)
                if tok in self.eos:
                    self.done[i] = True
                    continue
                m = self.matchers[i]
                if m is not None and not m.consume_token(tok):
                    self.rejected += 1  # cannot happen under the mask; the row is then free
                    self.matchers[i] = None
        rows = [i for i, m in enumerate(self.matchers) if m is not None and not self.done[i]]
        if rows:
            import numpy as np

            vocab = scores.shape[1]
            for i in rows:
                matcher: Any = self.matchers[i]
                raw: Any = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
                bits: Any = np.unpackbits(raw, bitorder="little")
                allowed = np.zeros(vocab, dtype=bool)
                k = min(vocab, bits.shape[0])
                allowed[:k] = bits[:k].astype(bool)
                if not allowed.any():  # the grammar is finished or broken: end the row
                    allowed[min(self.eos)] = True
                scores[i, torch.from_numpy(~allowed)] = float("-inf")
        if self.top_k > 0:
            lsm = torch.log_softmax(scores.float(), dim=-1)
            k = min(self.top_k, lsm.shape[1])
            vals, idx = torch.topk(lsm, k, dim=-1)
            for i in range(lsm.shape[0]):
                if not self.done[i]:
                    self._pending[i] = list(zip(idx[i].tolist(), vals[i].tolist(), strict=True))
            self._last_lsm = lsm
        return scores

    def _record(self, i: int, tok: int) -> None:
        if self.top_k <= 0 or self._pending[i] is None or self._last_lsm is None:
            return
        alts = self._pending[i] or []
        self.steps[i].append((tok, float(self._last_lsm[i, tok]), alts))
        self._pending[i] = None

    def finish(self, gen_ids: Sequence[Sequence[int]]) -> None:
        """Record each row's last generated token (the processor is not called after it)."""
        for i, ids in enumerate(gen_ids):
            if not self.done[i] and self._pending[i] is not None and len(ids) > len(self.steps[i]):
                self._record(i, ids[len(self.steps[i])])

    def token_logprobs(self, i: int, n_tokens: int, decode: Any) -> list[TokenLogprob] | None:
        if self.top_k <= 0:
            return None
        return [TokenLogprob(decode(t), lp, tuple((decode(a), alp) for a, alp in alts))
                for t, lp, alts in self.steps[i][:n_tokens]]


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Why ``value`` is not valid under ``schema`` (empty when valid), for the JSON-schema subset
    kyokan's own schemas use (type, properties, required, additionalProperties: false, enum,
    maxLength, items): enough to tell a server that ignored ``response_format``."""
    errs: list[str] = []
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "number": int | float,
             "integer": int}
    if isinstance(t, str) and t in types:
        ok = isinstance(value, types[t]) and not (t in ("integer", "number") and isinstance(value, bool))
        if not ok:
            return [f"{path}: expected {t}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: {value!r} is not one of the allowed values")
    if isinstance(value, str) and isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
        errs.append(f"{path}: longer than {schema['maxLength']} characters")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for k in schema.get("required") or []:
            if k not in value:
                errs.append(f"{path}: missing {k!r}")
        if schema.get("additionalProperties") is False:
            errs.extend(f"{path}: unexpected {k!r}" for k in value if k not in props)
        for k, sub in props.items():
            if k in value and isinstance(sub, dict):
                errs.extend(schema_errors(value[k], sub, f"{path}.{k}"))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errs.extend(schema_errors(v, schema["items"], f"{path}[{i}]"))
    return errs


def valid_json_answer(text: str, schema: dict[str, Any]) -> bool:
    """Whether ``text`` is, as a whole, one JSON value valid under ``schema``."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return False
    return not schema_errors(value, schema)
