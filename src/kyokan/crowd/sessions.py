"""Reviewer sessions kept in the database, and the failed-login back-off.

A login creates a ``user_sessions`` row; the cookie carries the random token and the row its
SHA-256. A request is logged in only while that row exists, is not revoked, not past its
absolute lifetime (``session_hours``) and not idle longer than ``session_idle_minutes`` — so a
copied cookie stops working at logout, at a password or role change, or when the account is
disabled.

Failed logins are counted per key in ``auth_throttle`` (so the limits hold across server
processes and restarts). A browser that has logged in as an account before carries a signed
*device cookie*; its attempts count against that device only. Any other attempt counts against
its network (``ip:``), the network and the account together (``ipacct:``) and the account as
seen from strangers (``acct:``). Past a few free failures a key is locked for 1, 2, 4 … seconds
(at most an hour) and attempts during the lock are answered 429 without a password check. A
stranger therefore cannot lock out a user who logs in from a browser they used before, and one
network cannot lock an account for everyone (``ipacct`` trips long before ``acct``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kyokan.crowd.db import CrowdDB
from kyokan.crowd.models import AuthThrottle, User, UserSession
from kyokan.crowd.security import (
    FORGET_AFTER,
    FREE_FAILURES,
    backoff_delay,
    new_session_token,
    token_hash,
)

#: how often a session's last-seen time is written (seconds): not on every request
SEEN_EVERY = 60.0


@dataclass(frozen=True)
class SessionUser:
    user_id: int
    username: str
    role: str
    session_id: str


def create_session(db: CrowdDB, user_id: int, *, client: str | None = None, now: float | None = None) -> str:
    """A new session for the user; returns the token for the cookie (stored only as a hash)."""
    cfg = db.config()
    t = time.time() if now is None else now
    token = new_session_token()
    with db.write() as s:
        s.add(UserSession(id=token_hash(token), user_id=user_id, created_at=t, seen_at=t,
                          expires_at=t + cfg.session_hours * 3600, revoked_at=None, client=client))
    return token


def session_user(db: CrowdDB, token: str | None, *, now: float | None = None) -> SessionUser | None:
    """The logged-in user of a session token, or None (unknown, revoked, expired, idle, disabled)."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    cfg = db.config()
    t = time.time() if now is None else now
    sid = token_hash(token)
    with db.read() as s:
        row = s.execute(select(UserSession.seen_at, UserSession.expires_at, UserSession.revoked_at,
                               User.id, User.username, User.role, User.active)
                        .join(User, User.id == UserSession.user_id).where(UserSession.id == sid)).first()
    if row is None or row.revoked_at is not None or not row.active or t >= row.expires_at:
        return None
    if t - row.seen_at > cfg.session_idle_minutes * 60:
        return None
    if t - row.seen_at > SEEN_EVERY:
        with db.write() as s:
            s.execute(update(UserSession).where(UserSession.id == sid).values(seen_at=t))
    return SessionUser(row.id, row.username, row.role, sid)


def revoke_session(db: CrowdDB, token: str | None) -> None:
    if not token or not isinstance(token, str) or len(token) > 100:
        return
    with db.write() as s:
        s.execute(update(UserSession).where(UserSession.id == token_hash(token), UserSession.revoked_at.is_(None))
                  .values(revoked_at=time.time()))


def revoke_user_sessions(s: Session, user_id: int, *, keep: str | None = None, now: float | None = None) -> int:
    """Revoke every live session of a user (inside the caller's transaction), except ``keep``
    (a session id, e.g. the one changing its own password)."""
    q = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if keep:
        q = q.where(UserSession.id != keep)
    got = s.execute(q.values(revoked_at=time.time() if now is None else now))
    return int(got.rowcount or 0)  # type: ignore[attr-defined]


# --- failed-login back-off -------------------------------------------------------------------
def throttle_wait(db: CrowdDB, keys: list[str], *, now: float | None = None) -> float:
    """Seconds until every key accepts an attempt (0 = go ahead)."""
    t = time.time() if now is None else now
    with db.read() as s:
        rows = s.execute(select(AuthThrottle.locked_until, AuthThrottle.last_failure)
                         .where(AuthThrottle.key.in_(keys))).all()
    return max([r.locked_until - t for r in rows if t - r.last_failure < FORGET_AFTER] + [0.0])


def throttle_fail(db: CrowdDB, keys: list[str], *, now: float | None = None) -> None:
    """Count a failed attempt against each key and lock it for its back-off delay."""
    t = time.time() if now is None else now
    free_by_kind = {**FREE_FAILURES, **db.config().login_free_failures}
    for key in keys:
        free = free_by_kind[key.split(":", 1)[0]]
        for _ in range(3):
            try:
                with db.write() as s:
                    row = s.get(AuthThrottle, key, with_for_update=True)
                    if row is None:
                        s.add(AuthThrottle(key=key, failures=1, last_failure=t, locked_until=t + backoff_delay(1, free)))
                    else:
                        n = 1 if t - row.last_failure >= FORGET_AFTER else row.failures + 1
                        row.failures, row.last_failure = n, t
                        row.locked_until = max(row.locked_until, t + backoff_delay(n, free))
                break
            except IntegrityError:  # inserted concurrently: count on the existing row
                continue


def throttle_clear(db: CrowdDB, keys: list[str]) -> None:
    with db.write() as s:
        s.execute(delete(AuthThrottle).where(AuthThrottle.key.in_(keys)))
