"""The kyokan dialogue record (schema version 1; see docs/format.md).

One dialogue per JSONL line::

    {"id": "d-0001", "situation_id": "s-001", "emotion": "fear", "lang": "ja",
     "situation": "…", "turns": [{"role": "speaker", "text": "…"}, …], "meta": {…}}

``speaker`` is the person who shares (the patient), ``listener`` the one who responds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1
FIELDS = ("id", "situation_id", "emotion", "lang", "situation", "turns", "meta")
REQUIRED = ("id", "situation_id", "emotion", "lang", "situation", "turns")
ROLES = ("speaker", "listener")
Role = Literal["speaker", "listener"]


@dataclass
class Turn:
    role: Role
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "text": self.text}


@dataclass
class Dialogue:
    id: str
    situation_id: str
    emotion: str | None
    lang: str
    situation: str
    turns: list[Turn]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "situation_id": self.situation_id,
            "emotion": self.emotion,
            "lang": self.lang,
            "situation": self.situation,
            "turns": [t.to_dict() for t in self.turns],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Dialogue:
        """Build from an already validated dict (see ``kyokan.data.validate``)."""
        return cls(
            id=d["id"],
            situation_id=d["situation_id"],
            emotion=d["emotion"],
            lang=d["lang"],
            situation=d["situation"],
            turns=[Turn(t["role"], t["text"]) for t in d["turns"]],
            meta=dict(d.get("meta") or {}),
        )

    # Views the later stages use -------------------------------------------------
    @property
    def exchanges(self) -> int:
        """Number of speaker→listener exchanges."""
        return sum(1 for t in self.turns if t.role == "listener")

    def last_listener_index(self) -> int | None:
        for i in range(len(self.turns) - 1, -1, -1):
            if self.turns[i].role == "listener":
                return i
        return None

    def context_and_response(self) -> tuple[list[Turn], Turn] | None:
        """The turns up to and including the last speaker turn before the last listener turn,
        and that listener turn (EmPO's prompt and chosen reply)."""
        i = self.last_listener_index()
        if i is None or i == 0:
            return None
        return self.turns[:i], self.turns[i]

    def text(self, sep: str = "\n") -> str:
        return sep.join(t.text for t in self.turns)
