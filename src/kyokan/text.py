"""Tokenisation shared by stats and metrics: fugashi (unidic-lite) for Japanese, a documented
regex for other languages."""

from __future__ import annotations

import re
from functools import cache

# words: letters/digits with inner apostrophes; punctuation dropped (docs/metrics.md)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def word_tokens(text: str) -> list[str]:
    """English (and default) word tokens: lower-cased runs of letters/digits, keeping inner
    apostrophes (``don't``)."""
    return _WORD.findall(text.lower())


@cache
def _tagger():  # type: ignore[no-untyped-def]
    import fugashi

    return fugashi.Tagger()


def ja_tokens(text: str) -> list[str]:
    """Japanese surface tokens from fugashi + unidic-lite, punctuation and spaces dropped."""
    return [w.surface for w in _tagger()(text) if w.surface.strip() and not _is_punct(w.surface)]


def _is_punct(s: str) -> bool:
    import unicodedata

    return all(unicodedata.category(ch).startswith(("P", "S", "Z")) for ch in s)


def tokens(text: str, lang: str) -> list[str]:
    return ja_tokens(text) if lang.startswith("ja") else word_tokens(text)
