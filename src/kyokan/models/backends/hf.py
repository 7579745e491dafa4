"""``hf:<hub id or path>`` — a local transformers causal LM (plus an optional PEFT LoRA adapter).

- chat messages → the tokenizer's chat template (or a supplied one) → batched generation with
  left padding, CPU or GPU;
- calls made concurrently from async code (``abatch``, or many ``agenerate`` at once) are gathered
  into batches of up to ``batch_size`` and run in a worker thread, one batch at a time;
- temperature 0 decodes greedily; otherwise each row samples from its **own** seeded generator
  (``GenerationParams.seed``), so a row's text does not depend on which rows share its batch — a
  resumed run reproduces an uninterrupted one;
- ``adapter=`` a LoRA folder; ``hf:<adapter folder>`` alone loads its base model from
  ``adapter_config.json``;
- ``GenerationParams.json_schema`` is enforced by grammar-constrained decoding
  (:mod:`kyokan.models.constrain`, llguidance): the answer always parses under the schema unless cut
  at ``max_new_tokens`` (``finish_reason`` "length"); ``choices`` scores every choice exactly
  (one forward pass over the prompt, its cache shared by all choices) and returns the most
  probable with every choice's log-probability; ``top_logprobs`` records per-token alternatives
  (after the grammar mask, before sampling);
- ``finish_reason`` is "stop" (end of turn or a stop string, which is cut from the text) or
  "length" (``max_new_tokens`` reached).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyokan.models.base import (
    ChatModel,
    Completion,
    GenerationParams,
    Message,
    ModelError,
    Usage,
    apply_stop,
)
from kyokan.models.registry import register_backend

#: used when a tokenizer has no chat template and none is given (plain, model-agnostic turns)
GENERIC_CHAT_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}"
    "{%- for message in messages -%}"
    "{{ '### ' + message['role'] | capitalize + ':\n' + message['content'] | trim + '\n\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '### Assistant:\n' }}{%- endif -%}"
)


@dataclass
class _Pending:
    messages: list[Message]
    params: GenerationParams
    future: asyncio.Future[Completion]


def _batch_key(p: GenerationParams) -> tuple[Any, ...]:
    """Rows that can share one ``generate`` call (the seed is per row, so it is not part of it;
    each row has its own grammar matcher, so the schema is not either)."""
    return (p.max_new_tokens, p.temperature > 0, p.temperature, p.top_p, p.stop, p.choices is not None,
            p.top_logprobs)


class HFChatModel(ChatModel):
    """A transformers causal LM behind the chat interface."""

    def __init__(self, path: str, *, adapter: str | None = None, device: str | None = None,
                 dtype: str | None = None, batch_size: int = 8, chat_template: str | None = None,
                 stop_tokens: Sequence[str] = (), name: str | None = None,
                 batch_wait: float = 0.005, trust_remote_code: bool = False,
                 extra_info: dict[str, Any] | None = None, threads: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads is not None:  # process-wide: torch has one intra-op thread pool
            torch.set_num_threads(max(1, threads))

        self.path = path
        self.name = name or path
        self.batch_size = max(1, batch_size)
        self.batch_wait = batch_wait
        #: called from the generating thread after every decoding step of a batch with
        #: (tokens so far, max_new_tokens, rows of the batch that have ended, rows in the batch):
        #: the rows of one batch all return together, so this is the only sign of life meanwhile
        self.on_decode: Callable[[int, int, int, int], None] | None = None
        self.extra_info = dict(extra_info or {})
        base = path
        adapter_path = adapter
        p = Path(path)
        if adapter_path is None and (p / "adapter_config.json").is_file():
            cfg = json.loads((p / "adapter_config.json").read_text(encoding="utf-8"))
            base = cfg.get("base_model_name_or_path") or ""
            if not base:
                raise ModelError(f"{path}: adapter_config.json names no base_model_name_or_path; pass it as "
                                 "hf:<base> with adapter=<folder>")
            adapter_path = path
        self.base = base
        self.adapter = adapter_path
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = _resolve_dtype(dtype, self.device)
        t0 = time.perf_counter()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(adapter_path if adapter_path and
                                                           (Path(adapter_path) / "tokenizer_config.json").is_file()
                                                           else base, trust_remote_code=trust_remote_code)
            model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype,
                                                              trust_remote_code=trust_remote_code)
        except OSError as e:
            raise ModelError(f"hf: cannot load {base!r}: {e}".split("\n")[0]) from e
        if adapter_path:
            try:
                from peft import PeftModel
            except ImportError as e:  # pragma: no cover - peft is in the models extra
                raise ModelError("a LoRA adapter needs peft: pip install 'kyokan[models]'") from e
            if not (Path(adapter_path) / "adapter_config.json").is_file():
                raise ModelError(f"adapter {adapter_path!r}: no adapter_config.json there")
            model = PeftModel.from_pretrained(model, adapter_path)
        self.model: Any = model.to(self.device).eval()
        self.load_seconds = time.perf_counter() - t0
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.chat_template_source = "model"
        if chat_template is not None:
            tok.chat_template = chat_template
            self.chat_template_source = "given"
        elif not getattr(tok, "chat_template", None):
            tok.chat_template = GENERIC_CHAT_TEMPLATE
            self.chat_template_source = "kyokan-generic"
        eos = self.model.generation_config.eos_token_id
        eos_ids = list(eos) if isinstance(eos, list) else ([eos] if eos is not None else [])
        if tok.eos_token_id is not None:
            eos_ids.append(tok.eos_token_id)
        for t in stop_tokens:
            i = tok.convert_tokens_to_ids(t)
            if isinstance(i, int) and i != tok.unk_token_id:
                eos_ids.append(i)
        self.eos_ids: list[int] = list(dict.fromkeys(eos_ids))
        self.usage = Usage()
        self.calls = 0
        self._lock = threading.Lock()  # one generate() at a time on this model
        self._grammars: Any = None
        self._pending: list[_Pending] = []
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # prompts ------------------------------------------------------------------------------
    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text the model sees for ``messages`` (chat template + generation prompt)."""
        try:
            text = self.tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                                      add_generation_prompt=True)
        except Exception as e:  # jinja errors from a template
            raise ModelError(f"{self.spec or self.name}: chat template failed: {e}") from e
        return str(text)

    # generation ---------------------------------------------------------------------------
    def generate_batch(self, batch: Sequence[Sequence[Message]], params: GenerationParams,
                       seeds: Sequence[int | None] | None = None) -> list[Completion]:
        """Generate for many conversations with the same params, in chunks of ``batch_size``
        (blocking; ``seeds`` overrides ``params.seed`` per row)."""
        out: list[Completion] = []
        rows = list(batch)
        row_seeds = list(seeds) if seeds is not None else [params.seed] * len(rows)
        for i in range(0, len(rows), self.batch_size):
            out.extend(self._generate_chunk(rows[i:i + self.batch_size], params, row_seeds[i:i + self.batch_size]))
        return out

    def grammars(self) -> Any:
        """The grammar engine for this model's tokenizer (built on first use, about 1 s)."""
        if self._grammars is None:
            from kyokan.models.constrain import Grammars

            vocab = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
            self._grammars = Grammars(self.tokenizer, max(vocab, len(self.tokenizer)), self.eos_ids)
        return self._grammars

    def capabilities(self) -> dict[str, Any]:
        return {"grammar": True, "response_format": True, "logprobs": True, "choices": True,
                "server_kind": None, "note": None}

    def _generate_chunk(self, rows: Sequence[Sequence[Message]], params: GenerationParams,
                        seeds: Sequence[int | None], schemas: Sequence[dict[str, Any] | None] | None = None,
                        choices: Sequence[Sequence[str] | None] | None = None) -> list[Completion]:
        if params.choices is not None or (choices is not None and any(c is not None for c in choices)):
            per = list(choices) if choices is not None else [params.choices] * len(rows)
            return [self._choose(m, tuple(c or ()), params) for m, c in zip(rows, per, strict=True)]
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from kyokan.models.constrain import ConstrainedLogits

        row_schemas = list(schemas) if schemas is not None else [params.json_schema] * len(rows)
        prompts = [self.render(m) for m in rows]
        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        sample = params.temperature > 0
        gc = GenerationConfig(
            max_new_tokens=params.max_new_tokens, do_sample=False, num_beams=1,
            temperature=1.0, top_p=1.0, top_k=50,
            eos_token_id=self.eos_ids or None, pad_token_id=tok.pad_token_id,
        )
        processors = LogitsProcessorList()
        constrained: ConstrainedLogits | None = None
        if any(sc is not None for sc in row_schemas) or params.top_logprobs > 0:
            g = self.grammars() if any(sc is not None for sc in row_schemas) else None
            matchers = [g.matcher(sc) if (g is not None and sc is not None) else None for sc in row_schemas]
            constrained = ConstrainedLogits(matchers, enc["input_ids"].shape[1], self.eos_ids,
                                            top_k=params.top_logprobs)
            processors.append(constrained)  # before the sampler: it samples among allowed tokens
        if self.on_decode is not None:
            processors.append(DecodeProgress(self.on_decode, enc["input_ids"].shape[1],
                                             params.max_new_tokens, self.eos_ids))
        if sample:
            gens = []
            for s in seeds:
                g = torch.Generator(device=self.device)
                g.manual_seed(int(s) if s is not None else secrets.randbits(63))
                gens.append(g)
            processors.append(PerRowSampler(gens, params.temperature, params.top_p))
        kwargs: dict[str, Any] = {}
        if params.stop:
            gc.stop_strings = list(params.stop)
            kwargs["tokenizer"] = tok
        with self._lock, torch.inference_mode():
            out = self.model.generate(**enc, generation_config=gc, logits_processor=processors, **kwargs)
        prompt_len = enc["input_ids"].shape[1]
        all_ids = [out[i, prompt_len:].tolist() for i in range(len(rows))]
        if constrained is not None:
            constrained.finish(all_ids)
        results: list[Completion] = []
        sampling = {"temperature": params.temperature if sample else 0.0, "top_p": params.top_p if sample else 1.0,
                    "do_sample": sample}
        for i in range(len(rows)):
            gen_ids = all_ids[i]
            n, finish = len(gen_ids), "length"
            for j, t in enumerate(gen_ids):
                if t in self.eos_ids:
                    n, finish = j, "stop"
                    break
            # pad after an early finish is the pad id (often = eos); count only real tokens
            text = str(tok.decode(gen_ids[:n], skip_special_tokens=True))
            text, cut = apply_stop(text, params.stop)
            if cut:
                finish = "stop"
            prompt_tokens = int(enc["attention_mask"][i].sum().item())
            usage = Usage(prompt_tokens, n + (1 if finish == "stop" and n < len(gen_ids) else 0))
            self.usage.add(usage)
            lps = constrained.token_logprobs(i, n, lambda t: tok.decode([t])) if constrained is not None else None
            results.append(Completion(text=text, model=self.name, usage=usage, finish_reason=finish, logprobs=lps,
                                      constrained="grammar" if row_schemas[i] is not None else None,
                                      sampling=dict(sampling)))
        self.calls += len(rows)
        return results

    def _choose(self, messages: Sequence[Message], choices: tuple[str, ...], params: GenerationParams) -> Completion:
        """The most probable of ``choices`` as the answer: every choice's log-probability given the
        prompt (summed over its tokens), from one forward pass over the prompt whose key/value
        cache every choice then continues (in chunks, to bound memory)."""
        import copy
        import inspect

        import torch

        if not choices:
            raise ModelError("choices: at least one choice")
        tok = self.tokenizer
        prompt_ids = tok(self.render(messages), return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.device)
        cont = [tok(c, add_special_tokens=False)["input_ids"] for c in choices]
        scores: list[float] = []
        with self._lock, torch.inference_mode():
            first = self.model(input_ids=prompt_ids, use_cache=True)
            first_lsm = torch.log_softmax(first.logits[0, -1].float(), dim=-1)
            # transformers 5 names the key/value cache `cache`, 4.x `past_key_values`
            cache_kw = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
            past = getattr(first, cache_kw, None) or first.past_key_values
            chunk = 8
            for s in range(0, len(cont), chunk):
                part = cont[s:s + chunk]
                width = max(len(c) for c in part)
                ids = torch.full((len(part), width), int(tok.pad_token_id or 0), dtype=torch.long, device=self.device)
                mask = torch.zeros((len(part), prompt_ids.shape[1] + width), dtype=torch.long, device=self.device)
                mask[:, : prompt_ids.shape[1]] = 1
                for r, c in enumerate(part):
                    ids[r, : len(c)] = torch.tensor(c, dtype=torch.long)
                    mask[r, prompt_ids.shape[1]: prompt_ids.shape[1] + len(c)] = 1
                cache = copy.deepcopy(past)
                cache.batch_repeat_interleave(len(part))
                logits = self.model(input_ids=ids, attention_mask=mask, use_cache=True, **{cache_kw: cache}).logits
                lsm = torch.log_softmax(logits.float(), dim=-1)
                for r, c in enumerate(part):
                    total = float(first_lsm[c[0]]) if c else 0.0
                    for j in range(1, len(c)):
                        total += float(lsm[r, j - 1, c[j]])
                    scores.append(total)
        z = torch.logsumexp(torch.tensor(scores, dtype=torch.float64), dim=0).item()
        norm = {c: sc - z for c, sc in zip(choices, scores, strict=True)}
        best = max(range(len(choices)), key=lambda k: scores[k])
        usage = Usage(int(prompt_ids.shape[1]), len(cont[best]))
        self.usage.add(usage)
        self.calls += 1
        return Completion(text=choices[best], model=self.name, usage=usage, finish_reason="stop",
                          choice_logprobs=norm, constrained="choices",
                          sampling={"temperature": 0.0, "top_p": 1.0, "do_sample": False,
                                    **({"note": "choices are ranked by probability; the answer is the most "
                                                "probable (no sampling)"} if params.temperature > 0 else {})})

    # async interface: concurrent calls are gathered into batches -------------------------------
    async def agenerate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._pending, self._worker = loop, [], None
        fut: asyncio.Future[Completion] = loop.create_future()
        self._pending.append(_Pending(list(messages), params, fut))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(self.batch_wait)  # let concurrent callers join the batch
            key = _batch_key(self._pending[0].params)
            take = [p for p in self._pending if _batch_key(p.params) == key][: self.batch_size]
            ids = {id(p) for p in take}
            self._pending = [p for p in self._pending if id(p) not in ids]
            try:
                comps = await asyncio.to_thread(self._generate_chunk, [p.messages for p in take],
                                                take[0].params, [p.params.seed for p in take],
                                                [p.params.json_schema for p in take],
                                                [p.params.choices for p in take])
            except Exception as e:
                for p in take:
                    if not p.future.done():
                        p.future.set_exception(e)
                continue
            for p, c in zip(take, comps, strict=True):
                if not p.future.done():
                    p.future.set_result(c)

    async def abatch(self, batch: Sequence[Sequence[Message]], params: GenerationParams,
                     concurrency: int | None = None) -> list[Completion | BaseException]:
        """All rows at once (batched by ``batch_size``; ``concurrency`` is not needed here)."""

        async def one(msgs: Sequence[Message]) -> Completion | BaseException:
            try:
                return await self.agenerate(msgs, params)
            except Exception as e:
                return e

        return list(await asyncio.gather(*(one(m) for m in batch)))

    def batch(self, batch: Sequence[Sequence[Message]], params: GenerationParams | None = None,
              concurrency: int | None = None) -> list[Completion | BaseException]:
        return asyncio.run(self.abatch(batch, params or GenerationParams(), concurrency))

    def info(self) -> dict[str, Any]:
        import torch
        import transformers

        d: dict[str, Any] = {
            "spec": self.spec or f"hf:{self.path}", "backend": "hf", "model": self.name, "path": self.base,
            "adapter": self.adapter, "device": self.device, "dtype": str(next(self.model.parameters()).dtype),
            "batch_size": self.batch_size, "chat_template": self.chat_template_source,
            "threads": torch.get_num_threads(),
            "transformers": transformers.__version__, "torch": torch.__version__,
        }
        if self._grammars is not None:
            from kyokan.models.constrain import ENGINE, engine_version

            d["constrained_decoding"] = {"engine": ENGINE, "version": engine_version()}
        d.update(self.extra_info)
        return d

    async def aclose(self) -> None:
        self._pending = []


class DecodeProgress:
    """A logits processor that changes nothing and reports each decoding step (see ``on_decode``)."""

    def __init__(self, callback: Callable[[int, int, int, int], None], prompt_len: int,
                 max_new_tokens: int, eos_ids: Sequence[int]) -> None:
        self.callback = callback
        self.prompt_len = prompt_len
        self.max_new_tokens = max_new_tokens
        self.eos_ids = list(eos_ids)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        new = input_ids[:, self.prompt_len:]
        ended = int(torch.isin(new, torch.tensor(self.eos_ids, device=new.device)).any(dim=1).sum()) if (
            self.eos_ids and new.shape[1]) else 0
        self.callback(int(new.shape[1]), self.max_new_tokens, ended, int(input_ids.shape[0]))
        return scores


class PerRowSampler:
    """A logits processor that samples each row from its own ``torch.Generator`` and leaves only the
    drawn token possible, so greedy decoding then emits it. Temperature and top-p (nucleus) are
    applied here; a row's draws depend only on its own seed and logits."""

    def __init__(self, generators: Sequence[Any], temperature: float, top_p: float) -> None:
        self.generators = list(generators)
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / max(self.temperature, 1e-6)
        probs = torch.softmax(logits, dim=-1)
        if self.top_p < 1.0:
            sorted_p, idx = torch.sort(probs, descending=True, dim=-1)
            cum = torch.cumsum(sorted_p, dim=-1)
            drop = (cum - sorted_p) > self.top_p  # keep the smallest prefix reaching top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, idx, sorted_p)
        out = torch.full_like(scores, float("-inf"))
        for i, g in enumerate(self.generators):
            tok = torch.multinomial(probs[i], 1, generator=g)
            out[i, tok] = 0.0
        return out


def _resolve_dtype(dtype: str | None, device: str) -> Any:
    import torch

    if dtype in (None, "auto"):
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ModelError(f"unknown dtype {dtype!r} (float32, bfloat16, float16, auto)") from None


@register_backend("hf", help="local transformers model: hf:<hub id or path> [--adapter LORA]")
def make_hf(spec: str, target: str, *, base_url: str | None = None, api_key: str | None = None,
            adapter: str | None = None, concurrency: int = 8, timeout: float = 60.0,
            max_retries: int = 5, **kw: Any) -> ChatModel:
    """Local transformers model: ``hf:<hub id or path>`` (+ ``adapter=`` LoRA folder)."""
    if base_url:
        raise ModelError("hf: models run locally; --base-url is for openai: specs")
    from kyokan.paths import looks_like_path

    if looks_like_path(target) and not Path(target).expanduser().exists():
        raise ModelError(f"{spec}: no such folder {target!r}")
    return HFChatModel(str(Path(target).expanduser()) if looks_like_path(target) else target, adapter=adapter, **kw)
