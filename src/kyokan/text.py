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


# --- normalisation of user-written text (crowd app, data validation) -------------------------
# Characters that render as nothing (or as blank space) yet survive NFKC: they split keywords
# past a screen (死\u200bね) or make a turn look written when it is empty. Removed by clean_text.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels (invisible)
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200D),  # zero width space, non-joiner, joiner
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x206A, 0x206F),  # deprecated format characters
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF9, 0xFFFB),  # interlinear annotation controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format characters
    (0xE0000, 0xE007F),  # tag characters ("ASCII smuggling")
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
#: explicit bidirectional formatting characters: they reorder what a reviewer sees (U+202E shows
#: "txet" for "text"); callers refuse them in new input, clean_text removes them
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
INVISIBLE = frozenset(chr(c) for lo, hi in _INVISIBLE_RANGES for c in range(lo, hi + 1))
_DROP = {ord(c): None for c in INVISIBLE | BIDI_CONTROLS}
# blank = whitespace, invisible, bidi controls, and the Braille pattern blank (U+2800) that
# renders as a space; anchored so a normal text is rejected at its first character
_BLANK = re.compile("[\\s\u2800" + "".join(sorted(INVISIBLE | BIDI_CONTROLS)).replace("\\", "\\\\")
                    .replace("]", "\\]").replace("^", "\\^").replace("-", "\\-") + "]*\\Z")


def bidi_controls(text: str) -> list[str]:
    """The bidirectional control characters in ``text`` as ``U+XXXX`` names, in order of first use."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch in BIDI_CONTROLS:
            seen[f"U+{ord(ch):04X}"] = None
    return list(seen)


def clean_text(text: str) -> str:
    """NFKC, then zero-width/invisible characters and bidi controls removed.

    The form to screen and to store: ``死\\u200bね`` becomes ``死ね``; full-width ASCII becomes
    ASCII. Surrounding whitespace is kept (callers strip as they need)."""
    import unicodedata

    return unicodedata.normalize("NFKC", text).translate(_DROP)


def is_blank(text: str) -> bool:
    """True when nothing visible is left once ``clean_text`` ran (empty, whitespace, invisible
    characters, bidi controls, U+2800 only)."""
    return _BLANK.match(text) is not None
