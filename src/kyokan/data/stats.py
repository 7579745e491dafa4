"""Corpus statistics: counts per emotion and situation, label balance, lengths, duplicates."""

from __future__ import annotations

import hashlib
import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from kyokan.text import word_tokens


def _ja_tokenizer() -> Callable[[str], int] | None:
    try:
        import fugashi  # noqa: F401
    except ImportError:
        return None
    from kyokan.text import ja_tokens

    return lambda text: len(ja_tokens(text))


def _en_count(text: str) -> int:
    return len(word_tokens(text))


_PARTS = ("situation", "speaker", "listener", "dialogue")


def _text_hash(text: str) -> int:
    """64-bit hash of a stripped text (blake2b: stable across runs, unlike hash())."""
    return int.from_bytes(hashlib.blake2b(text.strip().encode(), digest_size=8).digest(), "little")


def _summary(values: array[int] | list[int]) -> dict[str, float]:
    if not len(values):
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": int(a.size), "mean": round(float(a.mean()), 3), "sd": round(float(a.std(ddof=1)) if a.size > 1 else 0.0, 3),
        "min": int(a.min()), "p25": float(np.percentile(a, 25)), "median": float(np.median(a)),
        "p75": float(np.percentile(a, 75)), "max": int(a.max()),
    }


def normalized_entropy(counts: Iterable[int], k: int | None = None) -> float:
    """Shannon entropy of the label distribution divided by log(k): 1.0 is perfectly balanced.
    ``k`` is the number of labels the taxonomy has (labels with no dialogue count as imbalance)."""
    c = [x for x in counts if x > 0]
    total = sum(c)
    k = k or len(c)
    if total == 0 or k <= 1:
        return 1.0 if total else 0.0
    h = -sum((x / total) * math.log(x / total) for x in c)
    return h / math.log(k) + 0.0  # + 0.0: one label gives 0.0, not -0.0


class StatsAccumulator:
    """Streams records in and keeps only counters and length lists (ints), so 1M dialogues fit
    in well under the memory of the records themselves. Token counts are optional (fugashi is
    the slow part) and computed on demand."""

    def __init__(self, n_labels: int | None = None, tokens: bool = True) -> None:
        self.n_labels = n_labels
        self.dialogues = 0
        self.situations: set[str] = set()
        self.per_emotion: Counter[str] = Counter()
        self.sit_per_emotion: dict[str, set[str]] = defaultdict(set)
        self.pair: Counter[tuple[str, str]] = Counter()
        self.langs: Counter[str] = Counter()
        # compact arrays, not lists of Python ints: 4 bytes a length, 8 a text hash
        self.turns = array("I")
        self.chars: dict[str, array[int]] = {k: array("I") for k in _PARTS}
        self.tok: dict[str, array[int]] = {k: array("I") for k in _PARTS}
        self.text_hashes = array("Q")
        self.want_tokens = tokens
        self._ja: Callable[[str], int] | None = None
        self._ja_tried = False

    def _count_tokens(self, text: str, lang: str) -> int:
        if lang.startswith("ja"):
            if not self._ja_tried:
                self._ja, self._ja_tried = _ja_tokenizer(), True
            if self._ja is not None:
                return self._ja(text)
        return _en_count(text)

    def add(self, rec: dict[str, Any]) -> None:
        self.dialogues += 1
        emo = rec["emotion"] if rec["emotion"] is not None else "(unlabelled)"
        sid = rec["situation_id"]
        self.situations.add(sid)
        self.per_emotion[emo] += 1
        self.sit_per_emotion[emo].add(sid)
        self.pair[(emo, sid)] += 1
        lang = rec["lang"]
        self.langs[lang] += 1
        turns = rec["turns"]
        self.turns.append(len(turns))
        self.chars["situation"].append(len(rec["situation"]))
        total = 0
        for t in turns:
            n = len(t["text"])
            self.chars[t["role"]].append(n)
            total += n
            self.text_hashes.append(_text_hash(t["text"]))
        self.chars["dialogue"].append(total)
        if self.want_tokens:
            self.tok["situation"].append(self._count_tokens(rec["situation"], lang))
            dt = 0
            for t in turns:
                n = self._count_tokens(t["text"], lang)
                self.tok[t["role"]].append(n)
                dt += n
            self.tok["dialogue"].append(dt)

    def result(self, rescan: Callable[[], Iterable[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """The statistics. Repeated turn texts are found from their hashes; ``rescan`` (a second
        pass over the same records) recovers the example texts of the most repeated ones."""
        pair_counts = list(self.pair.values())
        hashes = np.frombuffer(self.text_hashes, dtype=np.uint64) if len(self.text_hashes) else np.zeros(0, np.uint64)
        uniq, counts = np.unique(hashes, return_counts=True)
        rep = counts > 1
        dup_h, dup_c = uniq[rep], counts[rep]
        order = np.lexsort((dup_h, -dup_c))[:10]
        top = [(int(dup_h[i]), int(dup_c[i])) for i in order]
        examples: dict[int, str] = {}
        if rescan is not None and top:
            wanted = {h for h, _ in top}
            for r in rescan():
                for t in r["turns"]:
                    h = _text_hash(t["text"])
                    if h in wanted and h not in examples:
                        examples[h] = t["text"].strip()[:80]
                if len(examples) == len(wanted):
                    break
        out: dict[str, Any] = {
            "dialogues": self.dialogues,
            "situations": len(self.situations),
            "languages": dict(sorted(self.langs.items())),
            "per_emotion": {e: {"dialogues": self.per_emotion[e], "situations": len(self.sit_per_emotion[e])}
                            for e in sorted(self.per_emotion)},
            "per_emotion_situation": {
                "pairs": len(pair_counts),
                "dialogues_per_pair": _summary(pair_counts),
            },
            "label_balance": {
                "normalized_entropy": round(normalized_entropy(self.per_emotion.values(), self.n_labels), 4),
                "labels_used": len(self.per_emotion),
                "labels_in_taxonomy": self.n_labels,
                "min_dialogues": min(self.per_emotion.values()) if self.per_emotion else 0,
                "max_dialogues": max(self.per_emotion.values()) if self.per_emotion else 0,
            },
            "turns_per_dialogue": _summary(self.turns),
            "length_chars": {k: _summary(v) for k, v in self.chars.items()},
        }
        if self.want_tokens:
            out["length_tokens"] = {k: _summary(v) for k, v in self.tok.items()}
            out["tokenizer"] = {"ja": "fugashi+unidic-lite" if self._ja else "regex words (fugashi not installed)",
                                "other": "regex words (kyokan.text.word_tokens)"}
        out["duplicate_texts"] = {
            "distinct_repeated": int(rep.sum()),
            "extra_copies": int((dup_c - 1).sum()),
            "top": [{"text": examples.get(h), "count": c} for h, c in top],
        }
        return out


def compute_stats(records: Iterable[dict[str, Any]], n_labels: int | None = None, tokens: bool = True,
                  rescan: Callable[[], Iterable[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Statistics of a record stream. Pass ``rescan`` (a function giving the records again) to
    get example texts for the most repeated turns; a list is rescanned by itself."""
    acc = StatsAccumulator(n_labels=n_labels, tokens=tokens)
    for r in records:
        acc.add(r)
    if rescan is None and isinstance(records, list):
        rescan = lambda: records  # noqa: E731
    return acc.result(rescan)
