"""Review workflow (EmplifAI §3.4): reviewers approve, edit (history kept), flag or reject; the
lead keeps or removes flagged entries. Rejections are capped per worker (the platform's rule:
at most 30% of a worker's submissions), and every action lands in the audit log."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from kyokan.crowd.assignment import retrying, withdraw_items
from kyokan.crowd.content import check_content, clean_field
from kyokan.crowd.db import CrowdDB
from kyokan.crowd.errors import Conflict, CrowdError, Forbidden, NotFound
from kyokan.crowd.models import AuditEntry, Edit, Item, LedgerEntry, Submission, User, Worker
from kyokan.crowd.security import hash_password, verify_password

ROLE_RANK = {"reviewer": 1, "lead": 2, "admin": 3}

#: action -> (allowed from-states, resulting state, minimum role)
ACTIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "approve": (frozenset({"pending", "rejected"}), "approved", "reviewer"),
    "reject": (frozenset({"pending", "approved"}), "rejected", "reviewer"),
    "flag": (frozenset({"pending", "approved"}), "flagged", "reviewer"),
    "keep": (frozenset({"flagged"}), "approved", "lead"),
    "remove": (frozenset({"flagged", "approved", "pending"}), "removed", "lead"),
}
#: states whose submission does not count toward its item's target when refill_on_remove is on
_UNCOUNTED = {"rejected", "removed"}


@dataclass(frozen=True)
class Actor:
    username: str
    role: str

    @property
    def label(self) -> str:
        return f"user:{self.username}"

    def at_least(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


# --- users ---------------------------------------------------------------------------------------
#: login names: ASCII only (``isalnum`` would also take ``²`` and full-width letters that look alike)
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD, MAX_PASSWORD = 10, 200


def valid_username(name: Any) -> bool:
    return isinstance(name, str) and USERNAME.fullmatch(name) is not None


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise CrowdError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise CrowdError(f"password: at most {MAX_PASSWORD} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in password):
        raise CrowdError("password: contains control characters")
    return password


def add_user(db: CrowdDB, username: str, password: str, role: str, actor: str = "cli") -> None:
    """Create a user, or set an existing one's password and role; an existing user's sessions are
    all revoked (a password reset or a role change takes effect at once, everywhere)."""
    from kyokan.crowd.sessions import revoke_user_sessions

    if role not in ROLE_RANK:
        raise CrowdError(f"role must be one of {', '.join(ROLE_RANK)}")
    if not valid_username(username):
        raise CrowdError("username: 1–64 ASCII letters, digits, '.', '_' or '-' (starting with a letter or digit)")
    check_password(password)
    h = hash_password(password)
    now = time.time()
    with db.write() as s:
        u = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        revoked = 0
        if u is None:
            s.add(User(username=username, role=role, password_hash=h, active=True, created_at=now))
        else:
            u.role, u.password_hash, u.active = role, h, True
            revoked = revoke_user_sessions(s, u.id, now=now)
        s.add(AuditEntry(at=now, actor=actor, action="user.set", target=username,
                         detail={"role": role, "sessions_revoked": revoked}))


def set_user_active(db: CrowdDB, username: str, active: bool, actor: str = "cli") -> int:
    """Disable (or re-enable) an account; disabling revokes its sessions. Returns how many."""
    from kyokan.crowd.sessions import revoke_user_sessions

    with db.write() as s:
        u = s.execute(select(User).where(User.username == username)).scalar_one_or_none() if valid_username(username) else None
        if u is None:
            raise NotFound(f"no user {username!r}")
        u.active = active
        n = 0 if active else revoke_user_sessions(s, u.id)
        s.add(AuditEntry(at=time.time(), actor=actor, action="user.enable" if active else "user.disable",
                         target=username, detail={"sessions_revoked": n}))
        return n


def change_password(db: CrowdDB, username: str, old: str, new: str, *, keep_session: str | None = None) -> int:
    """A user changes their own password (the old one is checked); every other session of theirs
    is revoked. Returns how many were."""
    from kyokan.crowd.sessions import revoke_user_sessions

    check_password(new)
    if authenticate(db, username, old) is None:
        raise Forbidden("the current password is wrong", code="bad_password")
    h = hash_password(new)
    with db.write() as s:
        u = s.execute(select(User).where(User.username == username)).scalar_one()
        u.password_hash = h
        n = revoke_user_sessions(s, u.id, keep=keep_session)
        s.add(AuditEntry(at=time.time(), actor=f"user:{username}", action="user.password", target=username,
                         detail={"sessions_revoked": n}))
        return n


def authenticate(db: CrowdDB, username: str, password: str) -> Actor | None:
    """The actor when the password is right; None otherwise (also for malformed names, which never
    reach the database). Raises ``security.Busy`` when too many checks are waiting."""
    u = None
    if valid_username(username) and isinstance(password, str) and len(password) <= MAX_PASSWORD:
        with db.read() as s:
            u = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if u is None or not u.active:
        # spend the same time as a real check so timing does not reveal which usernames exist
        verify_password(str(password)[:MAX_PASSWORD], _dummy_hash())
        return None
    if not verify_password(password, u.password_hash):
        return None
    return Actor(u.username, u.role)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password("not-a-real-password-0123456789"))
    return _DUMMY[0]


def user_id(db: CrowdDB, username: str) -> int | None:
    with db.read() as s:
        return s.scalar(select(User.id).where(User.username == username))


# --- rejection cap -------------------------------------------------------------------------------
@dataclass
class RejectionStats:
    worker: str
    total: int
    rejected: int
    cap: float

    @property
    def allowed(self) -> int:
        return math.floor(self.cap * self.total + 1e-9)

    @property
    def left(self) -> int:
        return max(0, self.allowed - self.rejected)

    @property
    def rate(self) -> float:
        return self.rejected / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "total": self.total, "rejected": self.rejected, "cap": self.cap,
                "allowed": self.allowed, "left": self.left, "rate": round(self.rate, 4)}


def rejection_stats(s: Session, wid: str, cap: float) -> RejectionStats:
    total, rejected = s.execute(
        select(func.count(), func.coalesce(func.sum(case((Submission.status == "rejected", 1), else_=0)), 0))
        .where(Submission.worker_id == wid, Submission.source == "crowd")).one()
    return RejectionStats(wid, int(total), int(rejected), cap)


# --- actions -------------------------------------------------------------------------------------
def _counted(status: str) -> bool:
    return status not in _UNCOUNTED


def review(db: CrowdDB, actor: Actor, uid: str, action: str | None, *, note: str = "",
           content: dict[str, Any] | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Apply an optional edit (``content``) and an optional ``action`` to one submission."""
    if action is not None and action not in ACTIONS:
        raise CrowdError("unknown action", code="bad_action")
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9._:-]{1,100}", uid):
        raise NotFound("no such submission")
    note = clean_field(note or "", "note", min_chars=0, max_chars=2000)
    return retrying(lambda: _review(db, actor, uid, action, note, content, expected_version))


def _review(db: CrowdDB, actor: Actor, uid: str, action: str | None, note: str,
            content: dict[str, Any] | None, expected_version: int | None) -> dict[str, Any]:
    cfg = db.config()
    now = time.time()
    with db.write() as s:
        sub = s.execute(select(Submission).where(Submission.uid == uid).with_for_update()).scalar_one_or_none()
        if sub is None:
            raise NotFound(f"no submission {uid!r}")
        if expected_version is not None and expected_version != sub.version:
            raise Conflict(f"{uid} was changed by someone else (version {sub.version}); reload and try again",
                           code="stale")
        payload: dict[str, Any] = {}
        if sub.item_id is not None:
            item = s.get(Item, sub.item_id)
            payload = dict(item.payload or {}) if item else {}
        edited = False
        if content is not None:
            if sub.status == "removed":
                raise Conflict(f"{uid} was removed; it cannot be edited", code="state")
            new = check_content(sub.kind, content, cfg, lang=sub.lang, payload=payload)
            if new != sub.content:
                s.add(Edit(submission_id=sub.id, version=sub.version + 1, editor=actor.username,
                           before=sub.content, after=new, note=note, at=now))
                s.add(AuditEntry(at=now, actor=actor.label, action="edit", target=uid,
                                 detail={"version": sub.version + 1, "note": note}))
                sub.content = new
                sub.version += 1
                sub.updated_at = now
                edited = True
        if action is not None:
            allowed, to, role = ACTIONS[action]
            if not actor.at_least(role):
                raise Forbidden(f"{action}: only a {role} may do this", code="role")
            if sub.status not in allowed:
                raise Conflict(f"{uid} is {sub.status}; {action} applies to {', '.join(sorted(allowed))}",
                               code="state")
            before = sub.status
            if sub.worker_id is not None and (to == "rejected") != (before == "rejected"):
                # one worker's reviews take turns: the cap is counted after the lock, so parallel
                # rejections of their submissions cannot all see "none rejected yet"
                s.execute(select(Worker.id).where(Worker.id == sub.worker_id).with_for_update(key_share=True))
            if to == "rejected" and sub.worker_id is not None:
                st = rejection_stats(s, sub.worker_id, cfg.rejection_cap)
                if st.rejected + 1 > st.allowed:
                    raise Conflict(
                        f"rejection cap: worker {sub.worker_id} has {st.rejected} of {st.total} submissions "
                        f"rejected; at most {cfg.rejection_cap:.0%} ({st.allowed}) may be rejected. "
                        "Flag the entry for the lead instead.", code="rejection_cap")
            if cfg.refill_on_remove and sub.item_id is not None and _counted(before) != _counted(to):
                if _counted(to):  # taking a rejection back: only if the slot is still free
                    got = s.execute(update(Item).where(
                        Item.id == sub.item_id, (Item.n_submitted + Item.n_reserved) < Item.target)
                        .values(n_submitted=Item.n_submitted + 1))
                    if got.rowcount != 1:  # type: ignore[attr-defined]
                        raise Conflict(f"{uid}: its slot was refilled by another worker", code="refilled")
                else:
                    s.execute(update(Item).where(Item.id == sub.item_id)
                              .values(n_submitted=Item.n_submitted - 1, closed=False))
            if sub.worker_id is not None and (to == "rejected") != (before == "rejected"):
                s.execute(update(LedgerEntry).where(LedgerEntry.submission_id == sub.id)
                          .values(status="void" if to == "rejected" else "payable", updated_at=now))
            sub.status = to
            if sub.kind == "situation" and (before == "approved") != (to == "approved"):
                # round-2 items of a situation that is no longer approved take no workers
                withdraw_items(s.connection(), sub.uid, withdrawn=to != "approved")
            if to == "flagged":
                sub.was_flagged = True
            sub.reviewed_by = actor.username
            sub.updated_at = now
            s.add(AuditEntry(at=now, actor=actor.label, action=action, target=uid,
                             detail={"from": before, "to": to, "note": note}))
        elif not edited:
            raise CrowdError("nothing to do: no action and no change", code="noop")
        return {"uid": uid, "status": sub.status, "version": sub.version, "edited": edited}
