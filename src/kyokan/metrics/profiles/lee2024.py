"""The ``lee2024`` profile: the rules of Lee et al. (2024)'s reference metric code as EmPO ran it
(``specificity.py``, ``vad.py``, ``ngrams.py``, ``tree.py``, ``gather_tree_stats.py`` in EmPO's
repository; read for their rules, not copied). English only (NLTK ``word_tokenize``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kyokan.metrics.profiles import MetricProfile, register_profile


def _tokens(text: str, lang: str) -> Sequence[str]:
    from kyokan.metrics.treebank import word_tokenize

    return word_tokenize(text)


def _lexicon_tokens(text: str, lang: str) -> Sequence[str]:
    from kyokan.metrics.treebank import word_tokenize

    return word_tokenize(text.lower())  # vad.py lower-cases before tokenising


def _tries(texts: Sequence[str], lang: str) -> dict[str, Any]:
    from kyokan.metrics.lee_tries import lee_tries
    from kyokan.metrics.treebank import word_tokenize

    return lee_tries(texts, word_tokenize)


PROFILE = register_profile(MetricProfile(
    name="lee2024",
    summary="NLTK word_tokenize with case and punctuation; a token missing from the NIDF table scores 1; "
            "lexicon misses and texts without lexicon words score 0; a word's intensity is its last line "
            "in intensity.txt; raw-string trie folding over overlapping n-gram counts",
    reference="Lee et al. (2024), code in github.com/justtherightsize/empo src/{specificity,vad,ngrams,tree,gather_tree_stats}.py",
    tokens=_tokens,
    tokenizer="nltk word_tokenize (English Punkt + NLTKWordTokenizer, nltk 3.8.1 rules), case kept",
    lexicon_tokens=_lexicon_tokens,
    lexicon_tokenizer="nltk word_tokenize of the lower-cased text",
    nidf_unknown=1.0,
    lexicon_miss=0.0,
    empty_text=0.0,
    intensity_rule="last",
    tries=_tries,
    tries_rule="lee2024: overlapping n-gram counts, weight n*count, ties shorter then first met; "
               "str.replace folding and re-tokenising; root counted; deterministic span names",
    length_normalization=None,
    langs=("en",),
    notes=("Lee's vad.py reuses the previous row's response scores when a response has no token and fails "
           "on a context with none; here such a text scores 0.",
           "Lee's span names come from salted hash(); here from SHA-256 (runs are reproducible)."),
))
