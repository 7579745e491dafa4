"""Tokens for the response metrics, computed once per distinct (text, language) in a process:
NIDF, tries and length all tokenise the same replies, and replies repeat (templates), so each
distinct reply goes through fugashi once. Same tokens as ``kyokan.text.tokens``."""

from __future__ import annotations

from functools import lru_cache

from kyokan.text import tokens


@lru_cache(maxsize=1 << 16)
def cached_tokens(text: str, lang: str) -> tuple[str, ...]:
    """``kyokan.text.tokens(text, lang)`` as an (immutable, shared) tuple, memoised."""
    return tuple(tokens(text, lang))
