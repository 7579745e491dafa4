"""NIDF (normalised inverse document frequency; See et al. 2019, Lee et al. 2024).

``NIDF(w) = (ln c_max − ln c_w) / (ln c_max − ln c_min)`` with ``c_w`` the number of reference
utterances containing token ``w`` and ``c_min``/``c_max`` the smallest/largest counts of the table.
A response scores the mean NIDF over its UNIQUE tokens; a token missing from the table is left
out (profile ``kyokan``) or scores a fixed value (``lee2024``: 1), and coverage is reported either
way. Count tables are versioned JSON files with a SHA-256 checksum of their canonical content, so
numbers are only compared on the same table. Lee et al.'s released table (``ed_counts.pkl``, a
pickle of ``{"word_counts": Counter, "num_sents": dict}``) is read with a restricted unpickler
that can build only dicts, ``collections.Counter``, strings and integers.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.io import write_json
from kyokan.provenance import sha256_bytes

TABLE_FORMAT = "kyokan-nidf-counts"
TABLE_VERSION = 1


def tokenizer_name(lang: str) -> str:
    if lang.startswith("ja"):
        from importlib.metadata import version

        return f"fugashi {version('fugashi')} + unidic-lite {version('unidic-lite')} (kyokan.text.ja_tokens)"
    return "kyokan.text.word_tokens (regex [^\\W_]+(?:'[^\\W_]+)*, lower-cased)"


def canonical_checksum(counts: dict[str, int], n_utterances: int, lang: str) -> str:
    body = json.dumps({"lang": lang, "n_utterances": n_utterances, "counts": sorted(counts.items())},
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class CountTable:
    counts: dict[str, int]
    n_utterances: int
    lang: str
    tokenizer: str
    source: str = ""
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.counts:
            raise KyokanError("NIDF count table is empty (no tokens in the reference corpus)")
        self.sha256 = self.sha256 or canonical_checksum(self.counts, self.n_utterances, self.lang)
        self.c_min = min(self.counts.values())
        self.c_max = max(self.counts.values())
        den = math.log(self.c_max) - math.log(self.c_min)
        self._den = den

    def nidf(self, w: str) -> float | None:
        c = self.counts.get(w)
        if c is None:
            return None
        if self._den == 0:  # every token equally frequent
            return 0.0
        return (math.log(self.c_max) - math.log(c)) / self._den

    def info(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "version": TABLE_VERSION, "lang": self.lang, "tokenizer": self.tokenizer,
                "n_utterances": self.n_utterances, "types": len(self.counts), "c_min": self.c_min,
                "c_max": self.c_max, "source": self.source, "sha256": self.sha256}

    def save(self, path: str | Path) -> None:
        write_json(path, {**self.info(), "counts": dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))})

    @classmethod
    def load(cls, path: str | Path) -> CountTable:
        """A kyokan JSON table, or Lee et al.'s ``.pkl`` (read safely, see ``read_count_pickle``)."""
        p = Path(path)
        if p.suffix.lower() in (".pkl", ".pickle"):
            return read_count_pickle(p)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise KyokanError(f"{p}: cannot read NIDF count table: {e}") from e
        if d.get("format") != TABLE_FORMAT:
            raise KyokanError(f"{p}: not a {TABLE_FORMAT} file")
        counts = {str(k): int(v) for k, v in d["counts"].items()}
        want = canonical_checksum(counts, int(d["n_utterances"]), str(d["lang"]))
        if d.get("sha256") != want:
            raise KyokanError(f"{p}: checksum mismatch (file edited?): recorded {d.get('sha256')}, computed {want}")
        return cls(counts, int(d["n_utterances"]), str(d["lang"]), str(d.get("tokenizer", "")),
                   str(d.get("source", p)), want)


class _CountUnpickler(pickle.Unpickler):
    """Builds only what a count table holds: dicts, ``collections.Counter``, str, int (and the
    tuples a Counter's reduce needs). Any other global is refused, so no code can run."""

    def find_class(self, module: str, name: str) -> Any:
        from collections import Counter

        if (module, name) == ("collections", "Counter"):
            return Counter
        if (module, name) in (("builtins", "dict"), ("__builtin__", "dict")):
            return dict
        raise pickle.UnpicklingError(f"refused global {module}.{name} (a count table holds only dicts, str and int)")


def read_count_pickle(path: str | Path, lang: str = "en") -> CountTable:
    """Lee et al. 2024's NIDF count table (``ed_counts.pkl``): ``word_counts`` token → number of
    ED utterances containing it (NLTK ``word_tokenize`` tokens, case kept)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise KyokanError(f"{p}: cannot read NIDF count pickle: {e.strerror}") from e
    try:
        obj = _CountUnpickler(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise KyokanError(f"{p}: not a readable count-table pickle: {e}") from e
    wc = obj.get("word_counts") if isinstance(obj, dict) else None
    if not isinstance(wc, dict):
        raise KyokanError(f"{p}: expected a dict with 'word_counts' (Lee et al.'s ed_counts.pkl layout)")
    bad = next(((k, v) for k, v in wc.items() if not isinstance(k, str) or not isinstance(v, int)
                or isinstance(v, bool) or v < 1), None)
    if bad is not None:
        raise KyokanError(f"{p}: word_counts: entry {bad!r} is not a token with a positive count")
    counts = {k: int(v) for k, v in wc.items()}
    return CountTable(counts, 0, lang, "nltk word_tokenize (Lee et al. 2024), case kept",
                      f"{p} (pickle sha256 {sha256_bytes(raw)})")


def build_table(utterances: Iterable[str], lang: str, source: str = "") -> CountTable:
    from kyokan.text import tokens

    counts: Counter[str] = Counter()
    n = 0
    for u in utterances:
        n += 1
        counts.update(set(tokens(u, lang)))
    return CountTable(dict(counts), n, lang, tokenizer_name(lang), source)


def score_tokens(table: CountTable, toks: Iterable[str],
                 unknown: float | None = None) -> tuple[float | None, float | None]:
    """(mean NIDF over the unique tokens, coverage = in-table / unique tokens). A token missing
    from the table is left out (``unknown=None``) or scores ``unknown`` (Lee et al.: 1)."""
    uniq = set(toks)
    if not uniq:
        return None, None
    found = [v for v in (table.nidf(w) for w in uniq) if v is not None]
    cov = len(found) / len(uniq)
    vals = found if unknown is None else found + [unknown] * (len(uniq) - len(found))
    return (math.fsum(vals) / len(vals) if vals else None), cov
