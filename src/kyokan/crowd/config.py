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
    #: a new lease holds its item this long; activity on the task (typing, reloading it) extends it
    #: by as much again, up to ``lease_seconds`` from its start (so a grabbed-and-abandoned slot
    #: comes back in minutes)
    first_lease_seconds: int = 300
    #: the longest a lease can hold an item, however active the worker is
    lease_seconds: int = 1800
    #: live leases one client network may hold at once (0 = no bound); the network is the
    #: address cut to ``client_prefix_v4`` / ``client_prefix_v6`` bits (one IPv4 address, one
    #: IPv6 /64 by default)
    leases_per_client: int = 5
    client_prefix_v4: int = 32
    client_prefix_v6: int = 64
    #: reverse proxies (addresses or CIDR networks) whose X-Forwarded-For is believed; empty =
    #: the TCP peer is the client, whatever headers say
    trusted_proxies: list[str] = field(default_factory=list)
    #: "open": a new worker id registers when it starts its first task (trust on first use);
    #: "invite": only ids an admin created (`kyokan crowd workers add`) work, each needing its key
    worker_registration: str = "open"
    #: "balanced" = least-filled open items first, random among ties; "random" = uniform over open items
    assignment: str = "balanced"
    #: share of a worker's submissions reviewers may reject (the platform's rule: 30%)
    rejection_cap: float = 0.30
    #: reopen an item's slot when one of its submissions is rejected or removed (EmplifAI did not
    #: refill; turn it on so garbage that reviewers reject or remove does not close items for good)
    refill_on_remove: bool = False
    #: per worker: submissions and page loads allowed per minute
    submits_per_minute: int = 10
    requests_per_minute: int = 120
    #: new worker ids one client network may register per minute (all workers behind one NAT count together)
    registrations_per_minute: int = 10
    #: submissions per minute from one client network, all worker ids together
    submits_per_minute_per_client: int = 60
    #: reviewer sessions: absolute lifetime and idle limit
    session_hours: float = 12.0
    session_idle_minutes: float = 120.0
    #: password hashes (scrypt, 32 MiB each) computed at once; further logins wait, and beyond
    #: ``hash_queue`` waiting ones are answered 503
    max_concurrent_hashes: int = 2
    hash_queue: int = 16
    #: failed logins allowed before back-off (1, 2, 4 … s, at most an hour) per kind of key: a
    #: network (``ip``), a network and an account (``ipacct``), an account from browsers it never
    #: logged in from (``acct``), one such browser (``dev``)
    login_free_failures: dict[str, int] = field(default_factory=lambda: {"ip": 30, "ipacct": 10, "acct": 50, "dev": 10})
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
        if self.worker_registration not in ("open", "invite"):
            raise KyokanError(f"config worker_registration: {self.worker_registration!r} is not open or invite")
        if not 0 <= int(self.leases_per_client) <= 100_000:
            raise KyokanError("config leases_per_client: must be between 0 (no bound) and 100000")
        if not 8 <= int(self.client_prefix_v4) <= 32 or not 16 <= int(self.client_prefix_v6) <= 128:
            raise KyokanError("config client_prefix_v4/v6: 8–32 and 16–128 bits")
        if set(self.login_free_failures) != {"ip", "ipacct", "acct", "dev"}:
            raise KyokanError("config login_free_failures: needs exactly the keys ip, ipacct, acct, dev")
        for name in ("pay", "caps", "login_free_failures"):
            d = getattr(self, name)
            if not isinstance(d, dict) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**9 for v in d.values()):
                raise KyokanError(f"config {name}: values must be whole numbers from 0 to 10^9")
        if not isinstance(self.harm_keywords, list) or not all(isinstance(k, str) for k in self.harm_keywords):
            raise KyokanError("config harm_keywords: must be a list of strings")
        import ipaddress

        if not isinstance(self.trusted_proxies, list):
            raise KyokanError("config trusted_proxies: must be a list of addresses or networks")
        for p in self.trusted_proxies:
            try:
                ipaddress.ip_network(str(p), strict=False)
            except ValueError:
                raise KyokanError(f"config trusted_proxies: {p!r} is not an address or network") from None
        if not 0.0 <= self.rejection_cap <= 1.0:
            raise KyokanError("config rejection_cap: must be between 0 and 1")
        for name in ("target_situation", "target_dialogue", "target_rating", "lease_seconds", "first_lease_seconds",
                     "submits_per_minute", "requests_per_minute", "registrations_per_minute",
                     "submits_per_minute_per_client", "max_chars", "max_body_bytes", "max_concurrent_hashes",
                     "hash_queue"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 10**9:
                raise KyokanError(f"config {name}: must be a whole number from 1 to 10^9")
        for name in ("session_hours", "session_idle_minutes"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v <= 24 * 365:
                raise KyokanError(f"config {name}: must be a positive number")

    def set(self, key: str, value: str) -> None:
        """Set one field from a CLI string (``pay.dialogue=60``, ``rejection_cap=0.3``)."""
        import json

        from kyokan.errors import did_you_mean

        head, _, sub = key.partition(".")
        known = {f.name: f for f in fields(self)}
        dotted = [f"{n}.{k}" for n in known if isinstance(getattr(self, n), dict) for k in getattr(self, n)]
        if head not in known:
            raise KyokanError(f"config: unknown key {key!r}{did_you_mean(key, [*known, *dotted])} "
                              f"(known: {', '.join(sorted(known))})")
        cur0 = getattr(self, head)
        if sub and isinstance(cur0, dict) and sub not in cur0:
            raise KyokanError(f"config: unknown key {key!r}{did_you_mean(key, dotted)} "
                              f"({head} has {', '.join(sorted(cur0))})")
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
