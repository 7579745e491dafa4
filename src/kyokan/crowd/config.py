"""Collection settings, stored in the database (``settings`` table, key ``config``) so every
server process and the CLI see the same rules. Defaults follow EmplifAI §3.3."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kyokan.errors import KyokanError


@dataclass
class CrowdConfig:
    #: default UI language (ja or en); users switch with ?lang=
    ui_lang: str = "ja"
    #: speaker→listener exchanges per dialogue (EmplifAI: two)
    exchanges: int = 2
    #: default targets when tasks are created
    target_situation: int = 10
    target_dialogue: int = 15
    target_rating: int = 3
    #: compensation per accepted task, in ``currency`` (¥10 a situation, ¥50 a dialogue)
    pay: dict[str, int] = field(default_factory=lambda: {"situation": 10, "dialogue": 50, "rating": 10})
    currency: str = "JPY"
    #: most submissions one worker may make per kind (0 = no cap)
    caps: dict[str, int] = field(default_factory=lambda: {"situation": 0, "dialogue": 0, "rating": 0})
    #: how long a reservation holds an item for a worker
    lease_seconds: int = 1800
    #: "balanced" = least-filled open items first, random among ties; "random" = uniform over open items
    assignment: str = "balanced"
    #: share of a worker's submissions reviewers may reject (the platform's rule: 30%)
    rejection_cap: float = 0.30
    #: reopen an item's slot when one of its submissions is rejected or removed
    refill_on_remove: bool = False
    #: per worker: submissions and page loads allowed per minute
    submits_per_minute: int = 10
    requests_per_minute: int = 120
    #: new worker ids one IP address may register per minute (all workers behind one NAT count together)
    registrations_per_minute: int = 60
    #: size limits
    max_chars: int = 1000
    min_chars: int = 2
    max_body_bytes: int = 65536
    #: extra harmful-content keywords (on top of the built-in list)
    harm_keywords: list[str] = field(default_factory=list)
    use_builtin_keywords: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CrowdConfig:
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in (d or {}).items() if k in known})
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.ui_lang not in ("ja", "en"):
            raise KyokanError(f"config ui_lang: {self.ui_lang!r} is not ja or en")
        if self.exchanges < 1 or self.exchanges > 10:
            raise KyokanError("config exchanges: must be between 1 and 10")
        if self.assignment not in ("balanced", "random"):
            raise KyokanError(f"config assignment: {self.assignment!r} is not balanced or random")
        if not 0.0 <= self.rejection_cap <= 1.0:
            raise KyokanError("config rejection_cap: must be between 0 and 1")
        for name in ("target_situation", "target_dialogue", "target_rating", "lease_seconds",
                     "submits_per_minute", "requests_per_minute", "registrations_per_minute", "max_chars", "max_body_bytes"):
            if int(getattr(self, name)) < 1:
                raise KyokanError(f"config {name}: must be at least 1")

    def set(self, key: str, value: str) -> None:
        """Set one field from a CLI string (``pay.dialogue=60``, ``rejection_cap=0.3``)."""
        import json

        head, _, sub = key.partition(".")
        known = {f.name: f for f in fields(self)}
        if head not in known:
            raise KyokanError(f"config: unknown key {head!r} (known: {', '.join(sorted(known))})")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        cur = getattr(self, head)
        if sub:
            if not isinstance(cur, dict):
                raise KyokanError(f"config {head}: is not a mapping")
            cur[sub] = parsed
        else:
            if isinstance(cur, bool) and not isinstance(parsed, bool):
                raise KyokanError(f"config {head}: expects true or false")
            if isinstance(cur, int | float) and not isinstance(cur, bool) and not isinstance(parsed, int | float):
                raise KyokanError(f"config {head}: expects a number")
            setattr(self, head, type(cur)(parsed) if isinstance(cur, int | float) and not isinstance(cur, bool) else parsed)
        self.check()
