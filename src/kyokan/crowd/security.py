"""Passwords (scrypt) behind a bound on concurrent hashing, signed cookies, session tokens,
CSRF tokens, client networks (for per-client bounds; proxies trusted only when configured),
login back-off and per-key rate limits.

No secret lives in the code or the database: the cookie-signing key comes from the
``KYOKAN_CROWD_SECRET`` environment variable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
    with _gate(n, r):
        dk = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                            maxmem=256 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


class Busy(Exception):
    """Too many password checks are already waiting: answer 503 and let the client retry."""


class HashGate:
    """At most ``limit`` scrypt computations at once (each takes 32 MiB), at most ``queue``
    waiting; beyond that :class:`Busy` at once, so a flood of logins cannot grow memory."""

    def __init__(self, limit: int = 2, queue: int = 16) -> None:
        self._sem = threading.BoundedSemaphore(max(1, limit))
        self._lock = threading.Lock()
        self.limit, self.queue, self.waiting, self.peak = limit, queue, 0, 0
        self.running = 0

    @contextmanager
    def slot(self, timeout: float = 30.0) -> Iterator[None]:
        with self._lock:
            if self.waiting >= self.queue + self.limit:
                raise Busy()
            self.waiting += 1
        try:
            if not self._sem.acquire(timeout=timeout):
                raise Busy()
        finally:
            with self._lock:
                self.waiting -= 1
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._sem.release()


#: the process-wide gate every scrypt call goes through (``configure_hashing`` resizes it)
HASH_GATE = HashGate()


def configure_hashing(limit: int, queue: int) -> None:
    global HASH_GATE
    if (HASH_GATE.limit, HASH_GATE.queue) != (limit, queue):
        HASH_GATE = HashGate(limit, queue)


#: hashes needing at least this much memory go through the gate (a worker key's 1 MiB does not)
GATED_BYTES = 8 * 2**20


def _gate(n: int, r: int) -> Any:
    return HASH_GATE.slot() if 128 * n * r >= GATED_BYTES else contextlib.nullcontext()


def verify_password(password: str, stored: str) -> bool:
    """Check a password against its stored hash (expensive ones through :data:`HASH_GATE`; may
    raise Busy)."""
    try:
        _, n, r, _ = stored.split("$", 3)
        cost = (int(n), int(r))
    except ValueError:
        return False
    if not (0 < cost[0] <= 2**20 and 0 < cost[1] <= 64):
        return False
    with _gate(*cost):
        return _verify(password, stored)


def _verify(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, dk = stored.split("$")
        if algo != "scrypt":
            return False
        want = base64.b64decode(dk)
        got = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), maxmem=256 * 1024 * 1024, dklen=len(want))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got, want)


def new_worker_key() -> str:
    """A worker's recovery key: short enough to write down, 60 bits of entropy."""
    raw = secrets.token_bytes(8)
    s = base64.b32encode(raw).decode().rstrip("=")[:12]
    return f"{s[:4]}-{s[4:8]}-{s[8:12]}"


def hash_worker_key(key: str) -> str:
    # a cheap scrypt: the key is random (not a human password) so no slow hash is needed
    return hash_password(normalize_worker_key(key), n=2**10)


_KEY_CHARS = re.compile(r"[A-Z2-7]{12}")


def normalize_worker_key(key: str) -> str:
    """``abcd-efgh-ijkl`` / ``ABCDEFGHIJKL`` → ``ABCD-EFGH-IJKL``; anything else is returned
    upper-cased and will not verify."""
    k = "".join(ch for ch in key.strip().upper() if ch not in "- ")
    return f"{k[:4]}-{k[4:8]}-{k[8:12]}" if _KEY_CHARS.fullmatch(k) else key.strip().upper()[:64]


def key_fingerprint(key_hash: str) -> str:
    """A short digest of a worker's stored key hash: a browser binding remembers it, so issuing a
    new key (``reset-key``) ends every binding made with the old one."""
    return hashlib.sha256(b"kyokan-worker-binding\0" + key_hash.encode()).hexdigest()[:16]


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database stores for a session token (a leaked table holds no usable cookie)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# --- client networks -------------------------------------------------------------------------
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    t = text.strip().strip('"')
    if t.startswith("["):  # [v6]:port
        t = t[1:].split("]", 1)[0]
    elif t.count(":") == 1:  # v4:port
        t = t.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(t)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _networks(specs: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for s in specs:
        try:
            out.append(ipaddress.ip_network(str(s), strict=False))
        except ValueError:
            continue
    return out


def client_address(peer: str | None, forwarded_for: list[str], trusted: Iterable[str]) -> str:
    """The client's address. ``forwarded_for`` is the X-Forwarded-For values in order. With no
    trusted proxy configured the TCP peer is the client, whatever the headers say; with trusted
    proxies the right-most address not among them is (the left part of the header is the
    client's own claim and can be anything).

    An ASGI server that already rewrote the peer from X-Forwarded-For (uvicorn's default for a
    loopback peer) leaves the peer equal to one of the header's addresses; when no proxy is
    trusted such requests are all put under one key, ``forwarded``, so a forged header buys
    nothing.
    """
    hops = [h.strip() for v in forwarded_for for h in v.split(",") if h.strip()]
    nets = _networks(trusted)
    ip = _parse_ip(peer or "")
    if not nets:
        if hops and peer is not None and any(_parse_ip(h) == ip or h == peer for h in hops):
            return "forwarded"
        return str(ip) if ip is not None else (peer or "?")[:45]
    if ip is None or not any(ip in n for n in nets):
        if hops and any(_parse_ip(h) == ip for h in hops):
            return str(ip)  # rewritten by the server from a header it trusted: take its word
        return str(ip) if ip is not None else (peer or "?")[:45]
    for h in reversed(hops):
        hip = _parse_ip(h)
        if hip is None:
            return "forwarded"  # garbage in the chain: do not let it pick a key
        if not any(hip in n for n in nets):
            return str(hip)
    return str(ip)


def client_key(address: str, prefix_v4: int = 32, prefix_v6: int = 64) -> str:
    """The network a client address counts under (``203.0.113.7/32``, ``2001:db8:1:2::/64``)."""
    ip = _parse_ip(address)
    if ip is None:
        return address[:64]
    bits = prefix_v4 if ip.version == 4 else prefix_v6
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


# --- login back-off --------------------------------------------------------------------------
#: failures allowed before back-off starts, per kind of key
FREE_FAILURES = {"ip": 30, "ipacct": 10, "acct": 50, "dev": 10}
MAX_DELAY = 3600.0
#: a key with no failure for this long starts again from zero
FORGET_AFTER = 24 * 3600.0


def backoff_delay(failures: int, free: int) -> float:
    """Seconds a key stays locked after its ``failures``-th failure: none for the first ``free``,
    then 1, 2, 4, … seconds up to an hour (so about 10 + 24 guesses a day once it is reached)."""
    over = failures - free
    if over <= 0:
        return 0.0
    return min(MAX_DELAY, 2.0 ** (over - 1))

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

    def __init__(self, secret: bytes, *, max_age: int = 30 * 24 * 3600, purpose: str = "session") -> None:
        # one key per purpose: a session cookie cannot be replayed as a device cookie
        label = b"kyokan-crowd-session\0" if purpose == "session" else f"kyokan-crowd-{purpose}\0".encode()
        self._key = hashlib.sha256(label + secret).digest()
        self.max_age = max_age

    def sign(self, value: dict[str, Any]) -> str:
        body = dict(value)
        body["_t"] = int(time.time())
        raw = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")
        mac = base64.urlsafe_b64encode(hmac.digest(self._key, raw.encode(), "sha256")).decode().rstrip("=")
        return f"{raw}.{mac}"

    def unsign(self, token: str) -> dict[str, Any] | None:
        try:
            raw, mac = token.split(".", 1)
            want = base64.urlsafe_b64encode(hmac.digest(self._key, raw.encode(), "sha256")).decode().rstrip("=")
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
    # bytes: compare_digest refuses non-ASCII str (a hostile form value would raise TypeError)
    return bool(expected) and bool(got) and hmac.compare_digest(str(expected).encode(), str(got).encode())


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
