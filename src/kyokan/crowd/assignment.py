"""Quota-balanced random assignment with expiring leases, and submission.

Invariant (checked by the tests and the benchmark): for every item, at every commit,
``n_submitted + n_reserved <= target`` and ``n_submitted`` equals its counted submissions, so an
item never overshoots its target however many workers race for it. Three things make that hold:

* reserving is a conditional ``UPDATE items SET n_reserved = n_reserved + 1 WHERE … room …``
  whose row count is checked (PostgreSQL re-evaluates the condition on the locked row; SQLite
  runs every write transaction under ``BEGIN IMMEDIATE``);
* on PostgreSQL candidates are picked with ``FOR UPDATE SKIP LOCKED`` so racing workers take
  different items instead of queueing on one;
* a worker's row is locked first, so one worker's parallel requests cannot pass the per-worker
  cap or take two leases at once; ``UNIQUE(item_id, worker_id)`` makes "never the same item
  twice" a database rule.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, bindparam, case, exists, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from kyokan.crowd.content import check_content, texts_of
from kyokan.crowd.db import CrowdDB
from kyokan.crowd.errors import Conflict, CrowdError, Forbidden, NotFound
from kyokan.crowd.models import (
    KINDS,
    AuditEntry,
    Item,
    LedgerEntry,
    Reservation,
    Submission,
    Worker,
)
from kyokan.crowd.screen import prescreen, screeners
from kyokan.crowd.security import hash_worker_key, new_worker_key, verify_password

WORKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$")
UID_PREFIX = {"situation": "s", "dialogue": "d", "rating": "r"}
T = TypeVar("T")


def check_worker_id(wid: str) -> str:
    if not isinstance(wid, str) or not WORKER_ID.match(wid):
        raise NotFound("unknown worker id", code="bad_worker_id")
    return wid


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise NotFound(f"unknown task kind {kind!r}", code="bad_kind")
    return kind


def retrying(db: CrowdDB, fn: Callable[[], T], attempts: int = 5) -> T:
    """Run a write transaction, retrying PostgreSQL deadlocks/serialisation failures."""
    for i in range(attempts):
        try:
            return fn()
        except DBAPIError as e:
            code = getattr(getattr(e, "orig", None), "sqlstate", None)
            if code not in ("40P01", "40001") or i == attempts - 1:
                raise
            time.sleep(0.005 * (i + 1))
    raise AssertionError("unreachable")


# --- worker identity (trust on first use) -------------------------------------------------------
def register_worker(db: CrowdDB, wid: str) -> str | None:
    """Create the worker on first visit; returns the new recovery key (shown once), or None when
    the worker already exists."""
    check_worker_id(wid)
    key = new_worker_key()
    now = time.time()
    try:
        with db.write() as s:
            if s.get(Worker, wid) is not None:
                return None
            s.add(Worker(id=wid, key_hash=hash_worker_key(key), blocked=False, created_at=now))
            s.add(AuditEntry(at=now, actor=f"worker:{wid}", action="worker.register", target=wid, detail={}))
    except IntegrityError:  # registered concurrently by another request
        return None
    return key


def verify_worker_key(db: CrowdDB, wid: str, key: str) -> bool:
    with db.read() as s:
        w = s.get(Worker, wid)
        return w is not None and verify_password(key.strip().upper(), w.key_hash)


def reset_worker_key(db: CrowdDB, wid: str, actor: str) -> str:
    key = new_worker_key()
    with db.write() as s:
        w = s.get(Worker, wid)
        if w is None:
            raise NotFound(f"no worker {wid!r}")
        w.key_hash = hash_worker_key(key)
        s.add(AuditEntry(at=time.time(), actor=actor, action="worker.reset_key", target=wid, detail={}))
    return key


# --- assignment --------------------------------------------------------------------------------
@dataclass
class Assignment:
    token: str
    kind: str
    item_id: int
    item_key: str
    emotion: str | None
    lang: str
    situation_uid: str | None
    situation_text: str | None
    payload: dict[str, Any]
    expires_at: float
    resumed: bool = False


@dataclass
class NoTask:
    #: none_open | cap | blocked
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


ITEMS: Table = Item.__table__  # type: ignore[assignment]
RES: Table = Reservation.__table__  # type: ignore[assignment]
SUBS: Table = Submission.__table__  # type: ignore[assignment]
WORKERS: Table = Worker.__table__  # type: ignore[assignment]
LEDGER: Table = LedgerEntry.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]


def sweep_expired(conn: Connection, now: float, limit: int = 500) -> int:
    """Expire overdue leases and give their slots back (inside the caller's transaction)."""
    rows = conn.execute(
        select(RES.c.id, RES.c.item_id)
        .where(RES.c.status == "active", RES.c.expires_at < now)
        .order_by(RES.c.id).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return 0
    conn.execute(update(RES).where(RES.c.id.in_([r.id for r in rows])).values(status="expired"))
    for item_id, n in sorted(Counter(r.item_id for r in rows).items()):
        conn.execute(update(ITEMS).where(ITEMS.c.id == item_id).values(n_reserved=ITEMS.c.n_reserved - n))
    return len(rows)


def _assignment(token: str, expires_at: float, item: Any, resumed: bool) -> Assignment:
    sit = item.situation_content
    return Assignment(token=token, kind=item.kind, item_id=item.id, item_key=item.key,
                      emotion=item.emotion, lang=item.lang, situation_uid=item.situation_uid,
                      situation_text=sit.get("text") if sit else None, payload=dict(item.payload or {}),
                      expires_at=expires_at, resumed=resumed)


def _item_query() -> Any:
    """An item row with its situation's current text (round 2) in one query."""
    return (select(ITEMS, SUBS.c.content.label("situation_content"))
            .select_from(ITEMS.outerjoin(SUBS, SUBS.c.uid == ITEMS.c.situation_uid)))


def _item(conn: Connection, item_id: int) -> Any:
    return conn.execute(_item_query().where(ITEMS.c.id == item_id)).one()


# Statements built once (bound parameters at execution): the hot paths skip statement construction.
_ROOM = (ITEMS.c.n_submitted + ITEMS.c.n_reserved) < ITEMS.c.target
S_WORKER = select(WORKERS.c.blocked).where(WORKERS.c.id == bindparam("wid")).with_for_update()
S_LIVE = (select(RES.c.token, RES.c.item_id, RES.c.expires_at)
          .where(RES.c.worker_id == bindparam("wid"), RES.c.kind == bindparam("kind"), RES.c.status == "active",
                 RES.c.expires_at >= bindparam("t")).limit(1))
S_USED = select(func.count()).select_from(RES).where(
    RES.c.worker_id == bindparam("wid"), RES.c.kind == bindparam("kind"), RES.c.status.in_(("active", "submitted")))
_CANDIDATES = _item_query().where(
    ITEMS.c.kind == bindparam("kind"), ITEMS.c.closed.is_(False), _ROOM,
    ~exists().where(RES.c.item_id == ITEMS.c.id, RES.c.worker_id == bindparam("wid")))
S_PICK = {
    "balanced": _CANDIDATES.order_by((ITEMS.c.n_submitted + ITEMS.c.n_reserved) * 1.0 / ITEMS.c.target, func.random())
    .limit(1).with_for_update(of=ITEMS, skip_locked=True),
    "random": _CANDIDATES.order_by(func.random()).limit(1).with_for_update(of=ITEMS, skip_locked=True),
}
U_RESERVE = (update(ITEMS).where(ITEMS.c.id == bindparam("item_id"), ITEMS.c.closed.is_(False), _ROOM)
             .values(n_reserved=ITEMS.c.n_reserved + 1))
I_RES = insert(RES)
S_RES = (select(RES.c.id, RES.c.worker_id, RES.c.status, RES.c.item_id).where(RES.c.token == bindparam("token"))
         .with_for_update())
S_ITEM_SMALL = select(ITEMS.c.id, ITEMS.c.kind, ITEMS.c.key, ITEMS.c.lang, ITEMS.c.emotion, ITEMS.c.situation_uid,
                      ITEMS.c.payload).where(ITEMS.c.id == bindparam("item_id"))
_CLOSES = case((ITEMS.c.n_submitted + 1 >= ITEMS.c.target, True), else_=ITEMS.c.closed)
U_SUBMIT = update(ITEMS).where(ITEMS.c.id == bindparam("item_id")).values(
    n_reserved=ITEMS.c.n_reserved - 1, n_submitted=ITEMS.c.n_submitted + 1, closed=_CLOSES)
U_SUBMIT_LATE = update(ITEMS).where(ITEMS.c.id == bindparam("item_id"), _ROOM).values(
    n_submitted=ITEMS.c.n_submitted + 1, closed=_CLOSES)
U_RES_DONE = update(RES).where(RES.c.id == bindparam("res_id")).values(status="submitted")
I_SUB = insert(SUBS).returning(SUBS.c.id)
I_LEDGER = insert(LEDGER)

#: sweep expired leases at most this often (seconds of the caller's clock) per process
SWEEP_EVERY = 1.0
_last_sweep: dict[str, float] = {}


def assign(db: CrowdDB, wid: str, kind: str, *, now: float | None = None) -> Assignment | NoTask:
    """Give the worker an item of ``kind``: their live lease if they have one, else a new lease
    on a random open item (least-filled first under ``assignment = balanced``)."""
    check_worker_id(wid)
    check_kind(kind)
    cfg = db.config()

    def txn() -> Assignment | NoTask:
        t = time.time() if now is None else now
        with db.write_conn() as conn:
            blocked = conn.execute(S_WORKER, {"wid": wid}).first()
            if blocked is None:
                raise NotFound("unknown worker id", code="unknown_worker")
            if blocked[0]:
                return NoTask("blocked")
            if abs(t - _last_sweep.get(db.url, -1e18)) >= SWEEP_EVERY:
                sweep_expired(conn, t)
                _last_sweep[db.url] = t
            live = conn.execute(S_LIVE, {"wid": wid, "kind": kind, "t": t}).first()
            if live is not None:
                return _assignment(live.token, live.expires_at, _item(conn, live.item_id), resumed=True)
            cap = int(cfg.caps.get(kind, 0) or 0)
            if cap:
                used = conn.execute(S_USED, {"wid": wid, "kind": kind}).scalar() or 0
                if used >= cap:
                    return NoTask("cap", {"cap": cap, "used": used})
            pick = S_PICK[cfg.assignment]
            for _ in range(8):
                item = conn.execute(pick, {"kind": kind, "wid": wid}).first()
                if item is None:
                    return NoTask("none_open")
                item_id = item.id
                got = conn.execute(U_RESERVE, {"item_id": item_id})
                if got.rowcount == 1:
                    break
            else:
                return NoTask("none_open")
            token = secrets.token_urlsafe(18)
            exp = t + cfg.lease_seconds
            conn.execute(I_RES, {"token": token, "item_id": item_id, "worker_id": wid, "kind": kind,
                                 "status": "active", "created_at": t, "expires_at": exp})
            return _assignment(token, exp, item, resumed=False)

    return retrying(db, txn)


def release(db: CrowdDB, wid: str, token: str) -> bool:
    """The worker gives an item back (skip): the lease ends and the slot reopens."""
    with db.write_conn() as conn:
        r = conn.execute(select(RES.c.id, RES.c.worker_id, RES.c.status, RES.c.item_id)
                         .where(RES.c.token == token).with_for_update()).first()
        if r is None or r.worker_id != wid or r.status != "active":
            return False
        conn.execute(update(RES).where(RES.c.id == r.id).values(status="expired"))
        conn.execute(update(ITEMS).where(ITEMS.c.id == r.item_id).values(n_reserved=ITEMS.c.n_reserved - 1))
        return True


# --- submission --------------------------------------------------------------------------------
@dataclass
class SubmitResult:
    uid: str
    status: str
    flags: list[dict[str, str]]
    duplicate: bool = False


def submit(db: CrowdDB, wid: str, token: str, raw: dict[str, Any], *, now: float | None = None) -> SubmitResult:
    """Store a worker's answer to their lease. Idempotent: sending the same lease twice returns
    the first submission. A lease that expired is still accepted while its item has room."""
    check_worker_id(wid)
    cfg = db.config()
    active_screeners = screeners(cfg)

    def txn() -> SubmitResult:
        t = time.time() if now is None else now
        with db.write_conn() as conn:
            r = conn.execute(S_RES, {"token": token}).first()
            if r is None or r.worker_id != wid:
                raise NotFound("no such task for this worker", code="unknown_task")
            item = conn.execute(S_ITEM_SMALL, {"item_id": r.item_id}).one()
            if r.status == "submitted":
                sub = conn.execute(select(SUBS.c.uid, SUBS.c.status, SUBS.c.screen)
                                   .where(SUBS.c.reservation_id == r.id)).one()
                return SubmitResult(sub.uid, sub.status, list((sub.screen or {}).get("hits", [])), duplicate=True)
            content = check_content(item.kind, raw, cfg, lang=item.lang, payload=item.payload)
            if r.status == "active":
                conn.execute(U_SUBMIT, {"item_id": item.id})
            else:  # expired: count it only if the item still has room
                got = conn.execute(U_SUBMIT_LATE, {"item_id": item.id})
                if got.rowcount != 1:
                    raise Conflict("this task's time ran out and it has been filled by others",
                                   code="lease_expired")
            conn.execute(U_RES_DONE, {"res_id": r.id})
            hits = prescreen(texts_of(item.kind, content), cfg, active_screeners)
            status = "flagged" if hits else "pending"
            uid = f"{UID_PREFIX[item.kind]}-{r.id:06d}"
            sub_id = conn.execute(I_SUB, {
                "uid": uid, "kind": item.kind, "item_id": item.id, "worker_id": wid, "reservation_id": r.id,
                "emotion": item.emotion, "lang": item.lang, "situation_uid": item.situation_uid, "content": content,
                "status": status, "screen": {"hits": hits} if hits else {}, "source": "crowd", "version": 1,
                "was_flagged": bool(hits), "reviewed_by": None, "created_at": t, "updated_at": t}).scalar_one()
            conn.execute(I_LEDGER, {
                "worker_id": wid, "submission_id": sub_id, "kind": item.kind, "amount": int(cfg.pay.get(item.kind, 0)),
                "currency": cfg.currency, "status": "payable", "created_at": t, "updated_at": t})
            if hits:  # submissions carry worker and time themselves; the log records the auto-flags
                conn.execute(insert(AUDIT).values(at=t, actor="prescreen", action="flag", target=uid,
                                                  detail={"from": "new", "to": "flagged", "hits": hits}))
            return SubmitResult(uid, status, hits)

    try:
        return retrying(db, txn)
    except IntegrityError as e:  # pragma: no cover - guarded by the reservation lock
        raise CrowdError(f"could not store the submission: {e.orig}") from None


def own_submission(db: CrowdDB, wid: str, uid: str) -> dict[str, Any]:
    """One of the worker's own submissions; anyone else's is 'not found' (not 'forbidden', which
    would confirm it exists)."""
    with db.read() as s:
        sub = s.execute(select(Submission).where(Submission.uid == uid)).scalar_one_or_none()
        if sub is None or sub.worker_id != wid:
            raise NotFound("no such submission")
        return {"uid": sub.uid, "kind": sub.kind, "emotion": sub.emotion, "status": sub.status,
                "content": sub.content, "situation_uid": sub.situation_uid, "created_at": sub.created_at}


def worker_blocked(db: CrowdDB, wid: str) -> bool:
    with db.read() as s:
        w = s.get(Worker, wid)
        if w is None:
            raise Forbidden("unknown worker")
        return w.blocked


def assignment_by_token(db: CrowdDB, wid: str, token: str) -> Assignment | None:
    """The worker's lease for a token (to show the form again after an error)."""
    with db.engine.connect() as conn:
        r = conn.execute(select(RES.c.token, RES.c.worker_id, RES.c.item_id, RES.c.expires_at)
                         .where(RES.c.token == token)).first()
        if r is None or r.worker_id != wid:
            return None
        return _assignment(r.token, r.expires_at, _item(conn, r.item_id), resumed=True)
