"""The taxonomy model: labels with names in two languages, sentiment groups, opposites."""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field
from typing import Any


def fold(text: str) -> str:
    """The key labels are matched on: NFKC (full-width → half-width, compatibility forms),
    case-folded, surrounding space and quotes stripped, inner runs of space/underscore/hyphen
    collapsed to one space."""
    s = unicodedata.normalize("NFKC", text).casefold().strip().strip("\"'「」『』[]()（）.。")
    return " ".join(s.replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True)
class Label:
    id: str
    en: str
    ja: str
    sentiment: str
    aliases: tuple[str, ...] = ()

    def name(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en

    def as_row(self) -> dict[str, Any]:
        return {"id": self.id, "en": self.en, "ja": self.ja, "sentiment": self.sentiment,
                "aliases": list(self.aliases)}


@dataclass(frozen=True)
class Opposite:
    label: str
    opposite: str
    source: str
    rationale: str


@dataclass(frozen=True)
class Dyad:
    id: str
    en: str
    ja: str
    kind: str
    of: tuple[str, str]


@dataclass
class Taxonomy:
    """A named label set. ``normalize`` accepts the id, the English name in any case, the Japanese
    name (NFKC) and the documented aliases, and returns the canonical id."""

    name: str
    labels: list[Label]
    opposites: dict[str, Opposite] = field(default_factory=dict)
    dyads: list[Dyad] = field(default_factory=list)
    description: str = ""
    source: str = ""
    _index: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        ids = [lab.id for lab in self.labels]
        if len(set(ids)) != len(ids):
            raise ValueError(f"taxonomy {self.name}: duplicate label ids")
        for lab in self.labels:
            for key in (lab.id, lab.en, lab.ja, *lab.aliases):
                k = fold(key)
                prev = self._index.get(k)
                if prev is not None and prev != lab.id:
                    raise ValueError(f"taxonomy {self.name}: name {key!r} is used by {prev} and {lab.id}")
                self._index[k] = lab.id
        for src, opp in self.opposites.items():
            if src not in self._by_id or opp.opposite not in self._by_id:
                raise ValueError(f"taxonomy {self.name}: opposite {src} -> {opp.opposite} names an unknown label")

    @property
    def _by_id(self) -> dict[str, Label]:
        return {lab.id: lab for lab in self.labels}

    @property
    def ids(self) -> list[str]:
        return [lab.id for lab in self.labels]

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and self.normalize(label) is not None

    def __len__(self) -> int:
        return len(self.labels)

    def label(self, label: str) -> Label:
        canon = self.normalize(label)
        if canon is None:
            raise KeyError(label)
        return self._by_id[canon]

    def normalize(self, text: str) -> str | None:
        """Canonical id for any accepted spelling, or None."""
        if not isinstance(text, str):
            return None
        return self._index.get(fold(text))

    def suggest(self, text: str) -> str | None:
        """The nearest label id for an unknown spelling (for error messages and flagged answers)."""
        key = fold(text)
        if not key:
            return None
        # substring first: "very sad" → sad, "悲しみを感じる" → 悲しみ
        hits = sorted((k for k in self._index if k and (k in key or key in k)), key=lambda k: -len(k))
        if hits:
            return self._index[hits[0]]
        close = difflib.get_close_matches(key, list(self._index), n=1, cutoff=0.5)
        return self._index[close[0]] if close else None

    def opposite(self, label: str) -> str | None:
        canon = self.normalize(label)
        if canon is None:
            return None
        opp = self.opposites.get(canon)
        return opp.opposite if opp else None

    def opposite_map(self) -> dict[str, str]:
        return {k: v.opposite for k, v in self.opposites.items()}

    def asymmetric_pairs(self) -> list[tuple[str, str, str]]:
        """(label, opposite, opposite's opposite) for every pair whose reverse differs."""
        out = []
        for k, v in self.opposites.items():
            back = self.opposites.get(v.opposite)
            if back is None or back.opposite != k:
                out.append((k, v.opposite, back.opposite if back else ""))
        return out

    def names(self, lang: str) -> list[str]:
        return [lab.name(lang) for lab in self.labels]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "labels": [lab.as_row() for lab in self.labels],
            "opposites": {k: {"opposite": v.opposite, "source": v.source, "rationale": v.rationale}
                          for k, v in self.opposites.items()},
        }
        if self.dyads:
            d["dyads"] = [{"id": x.id, "en": x.en, "ja": x.ja, "kind": x.kind, "of": list(x.of)} for x in self.dyads]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Taxonomy:
        labels = [Label(id=str(x["id"]), en=str(x.get("en", x["id"])), ja=str(x.get("ja", x.get("en", x["id"]))),
                        sentiment=str(x.get("sentiment", "")), aliases=tuple(x.get("aliases", ())))
                  for x in d["labels"]]
        opposites = {}
        for k, v in (d.get("opposites") or {}).items():
            if isinstance(v, str):
                v = {"opposite": v}
            opposites[k] = Opposite(k, v["opposite"], v.get("source", "user"), v.get("rationale", ""))
        dyads = [Dyad(x["id"], x.get("en", x["id"]), x.get("ja", ""), x.get("kind", ""), tuple(x["of"]))  # type: ignore[arg-type]
                 for x in d.get("dyads", [])]
        return cls(name=str(d["name"]), labels=labels, opposites=opposites, dyads=dyads,
                   description=str(d.get("description", "")), source=str(d.get("source", "")))
