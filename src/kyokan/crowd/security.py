"""Passwords (scrypt), signed session cookies, CSRF tokens and per-key rate limits.

No secret lives in the code or the database: the cookie-signing key comes from the
``KYOKAN_CROWD_SECRET`` environment variable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
from typing import Any

from kyokan.errors import KyokanError

SECRET_ENV = "KYOKAN_CROWD_SECRET"
MIN_SECRET_LEN = 32

# scrypt parameters (OWASP: N=2^17, r=8, p=1 ≈ 128 MiB; N=2^15 keeps login fast on 2 cores
# while staying far above brute-force budgets). Stored with the hash so they can be raised.
_N, _R, _P = 2**15, 8, 1


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), salted per password."""
    if not password:
        raise KyokanError("empty password")
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, dk = stored.split("$")
        if algo != "scrypt":
            return False
        want = base64.b64decode(dk)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=256 * 1024 * 1024, dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def new_worker_key() -> str:
    """A worker's recovery key: short enough to write down, 60 bits of entropy."""
    raw = secrets.token_bytes(8)
    s = base64.b32encode(raw).decode().rstrip("=")[:12]
    return f"{s[:4]}-{s[4:8]}-{s[8:12]}"


def hash_worker_key(key: str) -> str:
    # a cheap scrypt: the key is random (not a human password) so no slow hash is needed
    return hash_password(key.strip().upper(), n=2**10)


def secret_from_env(*, dev: bool = False) -> bytes:
    """The signing key. ``dev=True`` allows a random per-process key (sessions die on restart)."""
    s = os.environ.get(SECRET_ENV, "")
    if len(s) >= MIN_SECRET_LEN:
        return s.encode()
    if s:
        raise KyokanError(f"{SECRET_ENV} is too short: use at least {MIN_SECRET_LEN} characters "
                          "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if dev:
        return secrets.token_bytes(32)
    raise KyokanError(f"set {SECRET_ENV} to a random string of {MIN_SECRET_LEN}+ characters "
                      "(or pass --dev for a throwaway key)")


class Signer:
    """HMAC-SHA256 signed, base64url JSON values (the session cookie)."""

    def __init__(self, secret: bytes, *, max_age: int = 12 * 3600) -> None:
        self._key = hashlib.sha256(b"kyokan-crowd-session\0" + secret).digest()
        self.max_age = max_age

    def sign(self, value: dict[str, Any]) -> str:
        body = dict(value)
        body["_t"] = int(time.time())
        raw = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")
        mac = base64.urlsafe_b64encode(hmac.new(self._key, raw.encode(), hashlib.sha256).digest()).decode().rstrip("=")
        return f"{raw}.{mac}"

    def unsign(self, token: str) -> dict[str, Any] | None:
        try:
            raw, mac = token.split(".", 1)
            want = base64.urlsafe_b64encode(hmac.new(self._key, raw.encode(), hashlib.sha256).digest()).decode().rstrip("=")
            if not hmac.compare_digest(mac, want):
                return None
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, TypeError):
            return None
        if not isinstance(data, dict) or time.time() - int(data.get("_t", 0)) > self.max_age:
            return None
        data.pop("_t", None)
        return data

    def pseudonym(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:12]


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(expected: str | None, got: str | None) -> bool:
    return bool(expected) and bool(got) and hmac.compare_digest(str(expected), str(got))


class RateLimiter:
    """Sliding one-minute windows per key (thread-safe, in this process)."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, now: float | None = None) -> float:
        """Record a hit; returns 0 when allowed, else the seconds until the next is allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and now - q[0] >= self.window:
                q.popleft()
            if len(q) >= limit:
                return max(0.01, self.window - (now - q[0]))
            q.append(now)
            if len(self._hits) > 100_000:  # forget idle keys
                for k in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window]:
                    del self._hits[k]
            return 0.0
