"""Metric profiles: named sets of rules for the response metrics where the literature's reference
code and kyokan's preferred definitions differ (tokenisation, unknown words, lexicon misses,
intensity entries, trie folding, length). A profile is one module in this package (or a user's
own) that builds a ``MetricProfile`` and passes it to ``register_profile``; every output of
``kyokan eval responses`` / ``kyokan reproduce`` names the profile it used and its rules.

Built in: ``kyokan`` (the default; docs/metrics.md) and ``lee2024`` (Lee et al. 2024's reference
code as EmPO ran it). docs/metrics.md shows them side by side.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kyokan.errors import KyokanError

#: how a word's intensity is taken from an NRC Emotion Intensity listing with several emotions
IntensityRule = Literal["max", "last"]


@dataclass(frozen=True)
class MetricProfile:
    """The rules one profile applies. ``tokens`` feeds NIDF, tries and start words;
    ``lexicon_tokens`` the IVA lexicon lookups; ``tries`` folds a system's reply texts."""

    name: str
    summary: str
    reference: str
    tokens: Callable[[str, str], Sequence[str]]
    tokenizer: str
    lexicon_tokens: Callable[[str, str], Sequence[str]]
    lexicon_tokenizer: str
    #: NIDF of a token missing from the count table; None = the token is left out of the mean
    nidf_unknown: float | None
    #: score of a token missing from an IVA lexicon; None = the token is ignored
    lexicon_miss: float | None
    #: IVA score of a text with no scored token; None = no score (the example is missing)
    empty_text: float | None
    intensity_rule: IntensityRule
    tries: Callable[[Sequence[str], str], dict[str, Any]]
    tries_rule: str
    #: Unicode normalisation applied before counting characters (None: the text as it is)
    length_normalization: str | None
    langs: tuple[str, ...] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def supports(self, lang: str) -> bool:
        return self.langs is None or lang.split("-")[0] in self.langs

    def describe(self) -> dict[str, Any]:
        """The rules as data, written into every output that used the profile."""
        return {"name": self.name, "summary": self.summary, "reference": self.reference,
                "tokenizer": self.tokenizer, "lexicon_tokenizer": self.lexicon_tokenizer,
                "nidf_unknown_token": self.nidf_unknown, "lexicon_miss": self.lexicon_miss,
                "empty_text": self.empty_text, "intensity_rule": self.intensity_rule,
                "tries": self.tries_rule, "length_normalization": self.length_normalization,
                "langs": list(self.langs) if self.langs else None, "notes": list(self.notes)}


DEFAULT_PROFILE = "kyokan"
_PROFILES: dict[str, MetricProfile] = {}


def register_profile(profile: MetricProfile) -> MetricProfile:
    _PROFILES[profile.name] = profile
    return profile


def _load_builtin() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def available_profiles() -> list[str]:
    _load_builtin()
    return sorted(_PROFILES)


def get_profile(name: str | MetricProfile | None = None) -> MetricProfile:
    if isinstance(name, MetricProfile):
        return name
    _load_builtin()
    key = name or DEFAULT_PROFILE
    try:
        return _PROFILES[key]
    except KeyError:
        raise KyokanError(f"unknown metric profile {key!r}; available: {', '.join(sorted(_PROFILES))}") from None


__all__ = ["DEFAULT_PROFILE", "IntensityRule", "MetricProfile", "available_profiles", "get_profile",
           "register_profile"]
