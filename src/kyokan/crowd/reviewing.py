"""Review workflow (EmplifAI §3.4): reviewers approve, edit (history kept), flag or reject; the
lead keeps or removes flagged entries. Rejections are capped per worker (the platform's rule:
at most 30% of a worker's submissions), and every action lands in the audit log."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from kyokan.crowd.content import check_content
from kyokan.crowd.db import CrowdDB
from kyokan.crowd.errors import Conflict, CrowdError, Forbidden, NotFound
from kyokan.crowd.models import AuditEntry, Edit, Item, LedgerEntry, Submission, User
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
def add_user(db: CrowdDB, username: str, password: str, role: str, actor: str = "cli") -> None:
    if role not in ROLE_RANK:
        raise CrowdError(f"role must be one of {', '.join(ROLE_RANK)}")
    if not username or len(username) > 64 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise CrowdError("username: 1–64 letters, digits, '.', '_' or '-'")
    if len(password) < 10:
        raise CrowdError("password: at least 10 characters")
    now = time.time()
    with db.write() as s:
        u = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        h = hash_password(password)
        if u is None:
            s.add(User(username=username, role=role, password_hash=h, active=True, created_at=now))
        else:
            u.role, u.password_hash, u.active = role, h, True
        s.add(AuditEntry(at=now, actor=actor, action="user.set", target=username, detail={"role": role}))


def authenticate(db: CrowdDB, username: str, password: str) -> Actor | None:
    with db.read() as s:
        u = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if u is None or not u.active:
        # spend the same time as a real check so timing does not reveal which usernames exist
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, u.password_hash):
        return None
    return Actor(u.username, u.role)


_DUMMY_HASH = hash_password("not-a-real-password-0123456789")


def get_actor(db: CrowdDB, username: str) -> Actor | None:
    with db.read() as s:
        u = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        return Actor(u.username, u.role) if u is not None and u.active else None


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
        raise CrowdError(f"unknown action {action!r}")
    if len(note) > 2000:
        raise CrowdError("note: at most 2000 characters", code="too_long")
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
            if to == "flagged":
                sub.was_flagged = True
            sub.reviewed_by = actor.username
            sub.updated_at = now
            s.add(AuditEntry(at=now, actor=actor.label, action=action, target=uid,
                             detail={"from": before, "to": to, "note": note}))
        elif not edited:
            raise CrowdError("nothing to do: no action and no change", code="noop")
        return {"uid": uid, "status": sub.status, "version": sub.version, "edited": edited}
