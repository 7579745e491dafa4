"""The ``kyokan`` profile (default): definitions chosen for comparability across languages and
lexicons — see docs/metrics.md, "Metric profiles"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kyokan.metrics.profiles import MetricProfile, register_profile


def _tokens(text: str, lang: str) -> Sequence[str]:
    from kyokan.metrics.tokenize import cached_tokens

    return cached_tokens(text, lang)


def _tries(texts: Sequence[str], lang: str) -> dict[str, Any]:
    from kyokan.metrics.tries import response_tries

    return response_tries([_tokens(t, lang) for t in texts]).as_dict()


PROFILE = register_profile(MetricProfile(
    name="kyokan",
    summary="lower-cased word tokens without punctuation (fugashi for Japanese); unknown words and lexicon "
            "misses are missing, not scored; token-aligned, non-overlapping trie folding",
    reference="docs/metrics.md",
    tokens=_tokens,
    tokenizer="kyokan.text.tokens (en: regex [^\\W_]+(?:'[^\\W_]+)* on lower-cased text; ja: fugashi + unidic-lite)",
    lexicon_tokens=_tokens,
    lexicon_tokenizer="kyokan.text.tokens",
    nidf_unknown=None,
    lexicon_miss=None,
    empty_text=None,
    intensity_rule="max",
    tries=_tries,
    tries_rule="kyokan: non-overlapping token n-gram counts, ties longer then lexicographic, root excluded",
    length_normalization="NFC",
))
