"""Quota-balanced random assignment with expiring leases, and submission.

Invariant (checked by the tests and the benchmark): for every item, at every commit,
``n_submitted + n_reserved <= target`` and ``n_submitted`` equals its counted submissions, so an
item never overshoots its target however many workers race for it. What makes that hold:

* a slot is reserved by one conditional ``UPDATE items SET n_reserved = n_reserved + 1 WHERE
  id = (pick) AND … room …`` whose row count is checked (PostgreSQL re-evaluates the condition
  on the locked row; SQLite runs every write transaction under ``BEGIN IMMEDIATE``);
* on PostgreSQL the pick first takes an unlocked candidate (``FOR UPDATE SKIP LOCKED``: racing
  workers spread over different items); when every candidate is locked by someone else at that
  instant it waits for one (``FOR UPDATE`` without SKIP LOCKED) instead of answering "no tasks" —
  so "no tasks" means no item had room in the committed state, never "they were busy";
* a worker's row is locked first, so one worker's parallel requests cannot pass the per-worker
  cap or take two leases at once; ``UNIQUE(item_id, worker_id)`` makes "never the same item
  twice" a database rule;
* the bound on live leases per client network is counted under a per-network advisory lock
  (PostgreSQL ``pg_advisory_xact_lock``), so parallel requests from one network cannot both pass;
* a lease can only be submitted from ``active`` (or ``expired`` while its item has room), and the
  lease row is locked by the submission: blocking a worker or withdrawing an item revokes the
  leases under the same lock, so a blocked worker's or a skipped lease's submission is refused.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
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
from kyokan.crowd.security import (
    hash_worker_key,
    key_fingerprint,
    new_worker_key,
    normalize_worker_key,
    verify_password,
)

#: platform worker ids: ASCII letters, digits and ``_.@:-``, 1–64 characters (``fullmatch``:
#: ``$`` would let ``victim\n`` through as a second id that displays as ``victim``)
WORKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")
#: lease tokens as ``secrets.token_urlsafe(18)`` makes them
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
UID_PREFIX = {"situation": "s", "dialogue": "d", "rating": "r"}
T = TypeVar("T")


def check_worker_id(wid: str) -> str:
    if not isinstance(wid, str) or not WORKER_ID.fullmatch(wid):
        raise NotFound("unknown worker id", code="bad_worker_id")
    return wid


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise NotFound("unknown task kind", code="bad_kind")
    return kind


def valid_token(token: Any) -> bool:
    return isinstance(token, str) and TOKEN.fullmatch(token) is not None


def retrying(fn: Callable[[], T], attempts: int = 6) -> T:
    """Run a write transaction, retrying PostgreSQL deadlocks/serialisation failures and a
    pooled connection found dead (the server restarted)."""
    for i in range(attempts):
        try:
            return fn()
        except DBAPIError as e:
            code = getattr(getattr(e, "orig", None), "sqlstate", None)
            if (code not in ("40P01", "40001") and not e.connection_invalidated) or i == attempts - 1:
                raise
            time.sleep(0.002 * (2 ** i) * (1 + secrets.randbelow(100) / 100))
    raise AssertionError("unreachable")


# --- worker identity ---------------------------------------------------------------------------
def register_worker(db: CrowdDB, wid: str, *, client: str | None = None) -> str | None:
    """Create the worker (trust on first use); returns the new recovery key (shown once), or None
    when the id already exists."""
    check_worker_id(wid)
    key = new_worker_key()
    key_hash = hash_worker_key(key)
    now = time.time()
    try:
        with db.write() as s:
            if s.get(Worker, wid) is not None:
                return None
            s.add(Worker(id=wid, key_hash=key_hash, blocked=False, created_at=now, client=client))
            s.add(AuditEntry(at=now, actor=f"worker:{wid}", action="worker.register", target=wid,
                             detail={"client": client} if client else {}))
    except IntegrityError:  # registered concurrently by another request
        return None
    return key


def create_workers(db: CrowdDB, ids: Iterable[str], *, actor: str = "cli", reissue: bool = False) -> dict[str, str]:
    """Register worker ids ahead of time (``worker_registration = "invite"``): returns
    ``{id: recovery key}`` for each new id (and, with ``reissue``, a new key for existing ones) —
    to be sent to each worker through the platform's own messages."""
    wanted = list(dict.fromkeys(check_worker_id(w) for w in ids))
    out: dict[str, str] = {}
    now = time.time()
    with db.write() as s:
        for wid in wanted:
            w = s.get(Worker, wid)
            if w is not None and not reissue:
                continue
            key = new_worker_key()
            if w is None:
                s.add(Worker(id=wid, key_hash=hash_worker_key(key), blocked=False, created_at=now, client=None))
            else:
                w.key_hash = hash_worker_key(key)
            out[wid] = key
        s.add(AuditEntry(at=now, actor=actor, action="workers.add", target="",
                         detail={"created_or_reissued": len(out), "asked": len(wanted)}))
    return out


def worker_binding(db: CrowdDB, wid: str) -> tuple[str, bool] | None:
    """(fingerprint of the current key, blocked) of a registered worker, or None."""
    with db.read() as s:
        w = s.get(Worker, wid)
        return None if w is None else (key_fingerprint(w.key_hash), bool(w.blocked))


def verify_worker_key(db: CrowdDB, wid: str, key: str) -> str | None:
    """The binding fingerprint when ``key`` is the worker's recovery key, else None."""
    with db.read() as s:
        w = s.get(Worker, wid)
        stored = w.key_hash if w is not None else None
    if stored is None:
        return None
    return key_fingerprint(stored) if verify_password(normalize_worker_key(key), stored) else None


def reset_worker_key(db: CrowdDB, wid: str, actor: str) -> str:
    """A new recovery key: every browser bound with the old one is unbound at its next request
    (the recourse when an id was squatted: give the real worker the new key through the platform)."""
    check_worker_id(wid)
    key = new_worker_key()
    key_hash = hash_worker_key(key)
    with db.write() as s:
        w = s.get(Worker, wid)
        if w is None:
            raise NotFound("no such worker")
        w.key_hash = key_hash
        s.add(AuditEntry(at=time.time(), actor=actor, action="worker.reset_key", target=wid, detail={}))
    return key


def set_blocked(db: CrowdDB, wid: str, blocked: bool, actor: str) -> int:
    """Block (or unblock) a worker. Blocking also revokes every lease they could still submit
    (active or expired), under the lease rows' locks; returns the number revoked."""
    check_worker_id(wid)

    def txn() -> int:
        now = time.time()
        with db.write_conn() as conn:
            got = conn.execute(update(WORKERS).where(WORKERS.c.id == wid).values(blocked=blocked))
            if got.rowcount != 1:
                raise NotFound("no such worker")
            n = revoke_leases(conn, RES.c.worker_id == wid) if blocked else 0
            conn.execute(insert(AUDIT).values(at=now, actor=actor, action="worker.block" if blocked else "worker.unblock",
                                              target=wid, detail={"leases_revoked": n} if blocked else {}))
            return n

    return retrying(txn)


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
    #: the latest this lease can be extended to
    deadline: float = 0.0


@dataclass
class NoTask:
    #: none_open | cap | blocked | client_limit | not_started
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


ITEMS: Table = Item.__table__  # type: ignore[assignment]
RES: Table = Reservation.__table__  # type: ignore[assignment]
SUBS: Table = Submission.__table__  # type: ignore[assignment]
WORKERS: Table = Worker.__table__  # type: ignore[assignment]
LEDGER: Table = LedgerEntry.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]

_SITUATION = (select(SUBS.c.content).where(SUBS.c.uid == ITEMS.c.situation_uid).scalar_subquery()
              .label("situation_content"))


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
    _give_back(conn, Counter(r.item_id for r in rows))
    return len(rows)


def _give_back(conn: Connection, per_item: Counter[int]) -> None:
    for item_id, n in sorted(per_item.items()):  # in id order: concurrent sweeps cannot deadlock
        conn.execute(update(ITEMS).where(ITEMS.c.id == item_id).values(n_reserved=ITEMS.c.n_reserved - n))


def revoke_leases(conn: Connection, where: Any) -> int:
    """Revoke the matching leases that could still be submitted (active or expired) and give the
    active ones' slots back; returns how many were revoked."""
    rows = conn.execute(select(RES.c.id, RES.c.item_id, RES.c.status)
                        .where(where, RES.c.status.in_(("active", "expired")))
                        .order_by(RES.c.id).with_for_update()).all()
    if rows:
        conn.execute(update(RES).where(RES.c.id.in_([r.id for r in rows])).values(status="revoked"))
        _give_back(conn, Counter(r.item_id for r in rows if r.status == "active"))
    return len(rows)


def _assignment(token: str, expires_at: float, deadline: float, item: Any, resumed: bool,
                sit: dict[str, Any] | None = None) -> Assignment:
    sit = sit if sit is not None else getattr(item, "situation_content", None)
    return Assignment(token=token, kind=item.kind, item_id=item.id, item_key=item.key,
                      emotion=item.emotion, lang=item.lang, situation_uid=item.situation_uid,
                      situation_text=sit.get("text") if sit else None, payload=dict(item.payload or {}),
                      expires_at=expires_at, resumed=resumed, deadline=deadline)


def _item(conn: Connection, item_id: int) -> Any:
    return conn.execute(select(ITEMS, _SITUATION).where(ITEMS.c.id == item_id)).one()


def _advisory_key(client: str) -> int:
    # a stable signed 64-bit key per client network (crc32 twice: fast and the same in every process)
    b = client.encode()
    v = (zlib.crc32(b) << 32) | zlib.crc32(b"kyokan-client\0" + b)
    return v - (1 << 64) if v >= 1 << 63 else v


# Statements built once (bound parameters at execution): the hot paths skip statement construction.
_ROOM = (ITEMS.c.n_submitted + ITEMS.c.n_reserved) < ITEMS.c.target
_LIVE_JOIN = WORKERS.outerjoin(RES, (RES.c.worker_id == WORKERS.c.id) & (RES.c.kind == bindparam("kind"))
                               & (RES.c.status == "active") & (RES.c.expires_at >= bindparam("t")))
S_WORKER = (select(WORKERS.c.blocked, WORKERS.c.key_hash, RES.c.id.label("res_id"), RES.c.token, RES.c.item_id,
                   RES.c.expires_at, RES.c.created_at)
            .select_from(_LIVE_JOIN).where(WORKERS.c.id == bindparam("wid")).with_for_update(of=WORKERS))
S_USED = select(func.count()).select_from(RES).where(
    RES.c.worker_id == bindparam("wid"), RES.c.kind == bindparam("kind"), RES.c.status.in_(("active", "submitted")))
S_CLIENT_LIVE = select(func.count()).select_from(RES).where(
    RES.c.client == bindparam("client"), RES.c.status == "active", RES.c.expires_at >= bindparam("t"))
_CAND = ITEMS.alias("cand")  # the pick's own name for items (the UPDATE around it is on items)
_CANDIDATE = select(_CAND.c.id).where(
    _CAND.c.kind == bindparam("p_kind"), _CAND.c.closed.is_(False), _CAND.c.withdrawn.is_(False),
    (_CAND.c.n_submitted + _CAND.c.n_reserved) < _CAND.c.target,
    ~exists().where(RES.c.item_id == _CAND.c.id, RES.c.worker_id == bindparam("p_wid")))
_ORDER = {"balanced": ((_CAND.c.n_submitted + _CAND.c.n_reserved) * 1.0 / _CAND.c.target, func.random()),
          "random": (func.random(),)}


def _reserve_stmt(order: str, skip_locked: bool, with_situation: bool) -> Any:
    pick = _CANDIDATE.order_by(*_ORDER[order]).limit(1).with_for_update(skip_locked=skip_locked)
    # SQLite renders RETURNING columns unqualified, so a correlated subquery there would read the
    # wrong table's situation_uid: it fetches the situation separately
    cols = (*ITEMS.c, _SITUATION) if with_situation else tuple(ITEMS.c)
    return (update(ITEMS).where(ITEMS.c.id == pick.scalar_subquery(), _ROOM)
            .values(n_reserved=ITEMS.c.n_reserved + 1).returning(*cols))


#: (assignment order, skip locked rows, situation in RETURNING) -> reserve-a-slot statement
U_PICK = {(o, skip, sit): _reserve_stmt(o, skip, sit) for o in _ORDER for skip in (True, False) for sit in (True, False)}
S_SITUATION = select(SUBS.c.content).where(SUBS.c.uid == bindparam("uid"))
I_RES = insert(RES)
U_EXTEND = update(RES).where(RES.c.id == bindparam("res_id")).values(expires_at=bindparam("exp"))
S_RES = (select(RES.c.id, RES.c.worker_id, RES.c.status, RES.c.item_id, RES.c.created_at, RES.c.expires_at,
                WORKERS.c.blocked, WORKERS.c.key_hash, ITEMS.c.kind, ITEMS.c.key, ITEMS.c.lang, ITEMS.c.emotion,
                ITEMS.c.situation_uid, ITEMS.c.payload, ITEMS.c.withdrawn)
         .select_from(RES.join(WORKERS, WORKERS.c.id == RES.c.worker_id).join(ITEMS, ITEMS.c.id == RES.c.item_id))
         .where(RES.c.token == bindparam("token")).with_for_update(of=RES))
_CLOSES = case((ITEMS.c.n_submitted + 1 >= ITEMS.c.target, True), else_=ITEMS.c.closed)
U_SUBMIT = update(ITEMS).where(ITEMS.c.id == bindparam("item_id")).values(
    n_reserved=ITEMS.c.n_reserved - 1, n_submitted=ITEMS.c.n_submitted + 1, closed=_CLOSES)
U_SUBMIT_LATE = update(ITEMS).where(ITEMS.c.id == bindparam("item_id"), _ROOM).values(
    n_submitted=ITEMS.c.n_submitted + 1, closed=_CLOSES)
U_RES_DONE = update(RES).where(RES.c.id == bindparam("res_id")).values(status="submitted")
I_SUB = insert(SUBS).returning(SUBS.c.id)
I_LEDGER = insert(LEDGER)

#: sweep expired leases at most this often (seconds of the caller's clock) per process; a pick
#: that finds nothing sweeps at once before it answers "no tasks"
SWEEP_EVERY = 1.0
_last_sweep: dict[str, float] = {}


# --- PostgreSQL: fewer statements per step ----------------------------------------------------------
# On PostgreSQL each statement is a round trip and a parse/plan/execute in a backend, so the hot
# paths are fused (SQLite, in-process, keeps the plain statements above):
# * pick: a top-level ``SELECT … FOR UPDATE [SKIP LOCKED]`` whose WHERE also checks the network's
#   live-lease count (the caller took that network's advisory lock in an earlier statement, so
#   this statement's snapshot sees every committed lease of it). The lock must be taken at the
#   top level: the same locking sub-select inside ``UPDATE … WHERE id = (SELECT … FOR UPDATE)``
#   in a data-modifying CTE returned no row after waiting on a locked candidate (measured: 2–16
#   false "no tasks" in 40 racing workers), i.e. exactly the false negative to avoid;
# * reserve: one CTE updates the locked item, inserts the lease and returns the item with its
#   situation;
# * submit: one CTE updates the item, the lease, inserts the submission and the ledger entry.
_PG_ORDER = {"balanced": "(cand.n_submitted + cand.n_reserved)::float8 / cand.target, random()",
             "random": "random()"}
_PG_LIVE = ("(SELECT count(*) FROM reservations AS l WHERE l.client = :client AND l.status = 'active' "
            "AND l.expires_at >= :t)")


def _pg_pick_sql(order: str, skip_locked: bool) -> Any:
    return text(f"""
SELECT cand.id FROM items AS cand
WHERE cand.kind = :kind AND cand.closed IS false AND cand.withdrawn IS false
  AND cand.n_submitted + cand.n_reserved < cand.target
  AND NOT EXISTS (SELECT 1 FROM reservations AS r WHERE r.item_id = cand.id AND r.worker_id = :wid)
  AND {_PG_LIVE} < :bound
ORDER BY {_PG_ORDER[order]} LIMIT 1 FOR UPDATE OF cand{" SKIP LOCKED" if skip_locked else ""}""")


PG_PICK = {(o, skip): _pg_pick_sql(o, skip) for o in _PG_ORDER for skip in (True, False)}
PG_LIVE = text(f"SELECT {_PG_LIVE}")
PG_LOCK_CLIENT = text("SELECT pg_advisory_xact_lock(:k)")
PG_RESERVE = text("""
WITH picked AS (
  UPDATE items SET n_reserved = n_reserved + 1
  WHERE id = :item_id AND n_submitted + n_reserved < target
  RETURNING items.*),
ins AS (
  INSERT INTO reservations (token, item_id, worker_id, kind, status, created_at, expires_at, client)
  SELECT :token, picked.id, :wid, :kind, 'active', :t, :exp, :client FROM picked
  RETURNING id)
SELECT (SELECT count(*) FROM ins) AS n_ins, picked.*,
       (SELECT s.content FROM submissions AS s WHERE s.uid = picked.situation_uid) AS situation_content
FROM picked""")
PG_SUBMIT = text("""
WITH it AS (
  UPDATE items SET n_reserved = n_reserved - :dres, n_submitted = n_submitted + 1,
                   closed = CASE WHEN n_submitted + 1 >= target THEN true ELSE closed END
  WHERE id = :item_id AND (:dres = 1 OR n_submitted + n_reserved < target)
  RETURNING id),
rs AS (
  UPDATE reservations SET status = 'submitted' WHERE id = :res_id AND EXISTS (SELECT 1 FROM it)
  RETURNING id),
sub AS (
  INSERT INTO submissions (uid, kind, item_id, worker_id, reservation_id, emotion, lang, situation_uid, content,
                           status, screen, source, version, was_flagged, reviewed_by, created_at, updated_at)
  SELECT :uid, :kind, it.id, :wid, :res_id, :emotion, :lang, :situation_uid, CAST(:content AS jsonb), :status,
         CAST(:screen AS jsonb), 'crowd', 1, :was_flagged, NULL, :t, :t FROM it
  RETURNING id),
led AS (
  INSERT INTO ledger (worker_id, submission_id, kind, amount, currency, status, created_at, updated_at)
  SELECT :wid, sub.id, :kind, :amount, :currency, 'payable', :t, :t FROM sub
  RETURNING id)
SELECT (SELECT count(*) FROM it) AS n_item, (SELECT count(*) FROM rs) AS n_res, (SELECT count(*) FROM led) AS n_led""")


def _reserve_pg(conn: Connection, order: str, wid: str, kind: str, client: str | None, bound: int, token: str,
                t: float, exp: float, longest: float) -> Assignment | NoTask:
    if bound:  # serialise one network's lease grabs; released at commit
        conn.execute(PG_LOCK_CLIENT, {"k": _advisory_key(client or "")})
    params = {"client": client, "t": t, "bound": bound or 2**31 - 1, "kind": kind, "wid": wid}
    item_id = conn.execute(PG_PICK[order, True], params).scalar()
    if item_id is None and bound:  # the rare path: tell "this network holds enough" apart
        live = conn.execute(PG_LIVE, params).scalar() or 0
        if live >= bound:
            return NoTask("client_limit", {"limit": bound, "live": int(live)})
    if item_id is None:  # every candidate was locked this instant: wait for one instead of "no tasks"
        item_id = conn.execute(PG_PICK[order, False], params).scalar()
    if item_id is None and sweep_expired(conn, t):
        item_id = conn.execute(PG_PICK[order, False], params).scalar()
    if item_id is None:
        return NoTask("none_open")
    row = conn.execute(PG_RESERVE, {"item_id": item_id, "token": token, "wid": wid, "kind": kind, "t": t,
                                    "exp": exp, "client": client}).one()
    assert row.n_ins == 1  # the item row is locked by the pick: it cannot have filled meanwhile
    return _assignment(token, exp, t + longest, row, resumed=False)


def _check_binding(binding: str | None, key_hash: str) -> None:
    if binding is not None and binding != key_fingerprint(key_hash):
        raise Forbidden("this browser is no longer bound to the worker id", code="unbound")


def _extended(created_at: float, expires_at: float, t: float, first: float, longest: float) -> float:
    return max(expires_at, min(created_at + longest, t + first))


def assign(db: CrowdDB, wid: str, kind: str, *, client: str | None = None, binding: str | None = None,
           start: bool = True, now: float | None = None) -> Assignment | NoTask:
    """The worker's live lease of ``kind`` (extended: opening it again is activity), or — when
    ``start`` — a new lease on a random open item (least-filled first under ``assignment =
    balanced``). ``client`` is the network the request came from (bounded live leases);
    ``binding`` the key fingerprint the browser was bound with (a stale one is refused)."""
    check_worker_id(wid)
    check_kind(kind)
    cfg = db.config()
    first, longest = float(min(cfg.first_lease_seconds, cfg.lease_seconds)), float(cfg.lease_seconds)
    bound = int(cfg.leases_per_client or 0) if client else 0

    def txn() -> Assignment | NoTask:
        t = time.time() if now is None else now
        with db.write_conn() as conn:
            w = conn.execute(S_WORKER, {"wid": wid, "kind": kind, "t": t}).first()
            if w is None:
                raise NotFound("unknown worker id", code="unknown_worker")
            _check_binding(binding, w.key_hash)
            if w.blocked:
                return NoTask("blocked")
            if w.token is not None:
                exp = _extended(w.created_at, w.expires_at, t, first, longest)
                if exp > w.expires_at:
                    conn.execute(U_EXTEND, {"res_id": w.res_id, "exp": exp})
                return _assignment(w.token, exp, w.created_at + longest, _item(conn, w.item_id), resumed=True)
            if not start:
                return NoTask("not_started")
            cap = int(cfg.caps.get(kind, 0) or 0)
            if cap:
                used = conn.execute(S_USED, {"wid": wid, "kind": kind}).scalar() or 0
                if used >= cap:
                    return NoTask("cap", {"cap": cap, "used": used})
            token = secrets.token_urlsafe(18)
            exp = t + first
            if abs(t - _last_sweep.get(db.url, -1e18)) >= SWEEP_EVERY:
                _last_sweep[db.url] = t
                sweep_expired(conn, t)
            if db.is_postgres:
                return _reserve_pg(conn, cfg.assignment, wid, kind, client, bound, token, t, exp, longest)
            if bound:
                live = conn.execute(S_CLIENT_LIVE, {"client": client, "t": t}).scalar() or 0
                if live >= bound:
                    return NoTask("client_limit", {"limit": bound, "live": live})
            params = {"p_kind": kind, "p_wid": wid}
            item = conn.execute(U_PICK[cfg.assignment, True, False], params).first()
            if item is None and sweep_expired(conn, t):
                item = conn.execute(U_PICK[cfg.assignment, True, False], params).first()
            if item is None:
                return NoTask("none_open")
            conn.execute(I_RES, {"token": token, "item_id": item.id, "worker_id": wid, "kind": kind,
                                 "status": "active", "created_at": t, "expires_at": exp, "client": client})
            sit = None
            if item.situation_uid is not None:
                sit = conn.execute(S_SITUATION, {"uid": item.situation_uid}).scalar()
            return _assignment(token, exp, t + longest, item, resumed=False, sit=sit)

    return retrying(txn)


def open_for(db: CrowdDB, wid: str, kind: str) -> bool:
    """Whether any item of ``kind`` has room for this worker now (a read: no lease is taken)."""
    with db.engine.connect() as conn:
        q = _CANDIDATE.limit(1)
        return conn.execute(q, {"p_kind": kind, "p_wid": wid}).first() is not None


def extend(db: CrowdDB, wid: str, token: str, *, binding: str | None = None, now: float | None = None) -> float | None:
    """Activity on a task (the page's heartbeat while the worker types): push the lease's expiry
    to ``now + first_lease_seconds``, never past ``lease_seconds`` from its start. Returns the
    new expiry, or None when the lease is not live (expired, submitted, skipped, not theirs)."""
    check_worker_id(wid)
    if not valid_token(token):
        return None
    cfg = db.config()
    first, longest = float(min(cfg.first_lease_seconds, cfg.lease_seconds)), float(cfg.lease_seconds)

    def txn() -> float | None:
        t = time.time() if now is None else now
        with db.write_conn() as conn:
            r = conn.execute(S_RES, {"token": token}).first()
            if r is None or r.worker_id != wid:
                return None
            _check_binding(binding, r.key_hash)
            if r.status != "active" or r.expires_at < t or r.blocked or r.withdrawn:
                return None
            exp = _extended(r.created_at, r.expires_at, t, first, longest)
            if exp > r.expires_at:
                conn.execute(U_EXTEND, {"res_id": r.id, "exp": exp})
            return float(exp)

    return retrying(txn)


def release(db: CrowdDB, wid: str, token: str, *, binding: str | None = None) -> bool:
    """The worker gives an item back (skip): the lease is released (it can no longer be
    submitted) and, if it was live, the slot reopens."""
    check_worker_id(wid)
    if not valid_token(token):
        return False

    def txn() -> bool:
        with db.write_conn() as conn:
            r = conn.execute(S_RES, {"token": token}).first()
            if r is None or r.worker_id != wid or r.status not in ("active", "expired"):
                return False
            _check_binding(binding, r.key_hash)
            conn.execute(update(RES).where(RES.c.id == r.id).values(status="released"))
            if r.status == "active":
                _give_back(conn, Counter({r.item_id: 1}))
            return True

    return retrying(txn)


def withdraw_items(conn: Connection, situation_uid: str, withdrawn: bool) -> int:
    """Withdraw (or reinstate) the round-2 items of a situation; withdrawing revokes their leases.
    Returns the number of items changed."""
    got = conn.execute(update(ITEMS).where(ITEMS.c.situation_uid == situation_uid, ITEMS.c.withdrawn.is_(not withdrawn))
                       .values(withdrawn=withdrawn).returning(ITEMS.c.id)).scalars().all()
    if withdrawn and got:
        revoke_leases(conn, RES.c.item_id.in_(list(got)))
    return len(got)


# --- submission --------------------------------------------------------------------------------
@dataclass
class SubmitResult:
    uid: str
    status: str
    flags: list[dict[str, str]]
    duplicate: bool = False


def submit(db: CrowdDB, wid: str, token: str, raw: dict[str, Any], *, binding: str | None = None,
           now: float | None = None) -> SubmitResult:
    """Store a worker's answer to their lease. Idempotent: sending the same lease twice returns
    the first submission. A lease that timed out is still accepted while its item has room; a
    skipped or revoked lease, a blocked worker and a withdrawn item are refused."""
    check_worker_id(wid)
    if not valid_token(token):
        raise NotFound("no such task for this worker", code="unknown_task")
    cfg = db.config()
    active_screeners = screeners(cfg)

    def txn() -> SubmitResult:
        t = time.time() if now is None else now
        with db.write_conn() as conn:
            r = conn.execute(S_RES, {"token": token}).first()
            if r is None or r.worker_id != wid:
                raise NotFound("no such task for this worker", code="unknown_task")
            _check_binding(binding, r.key_hash)
            if r.status == "submitted":
                sub = conn.execute(select(SUBS.c.uid, SUBS.c.status, SUBS.c.screen)
                                   .where(SUBS.c.reservation_id == r.id)).one()
                return SubmitResult(sub.uid, sub.status, list((sub.screen or {}).get("hits", [])), duplicate=True)
            if r.blocked:
                raise Forbidden("this worker id is blocked", code="blocked")
            if r.withdrawn:
                raise Conflict("this task was withdrawn (its situation is no longer in the collection)",
                               code="withdrawn")
            if r.status == "released":
                raise Conflict("you skipped this task; it can no longer be submitted", code="released")
            if r.status != "active" and r.status != "expired":
                raise Conflict("this task was withdrawn", code="revoked")
            content = check_content(r.kind, raw, cfg, lang=r.lang, payload=r.payload)
            hits = prescreen(texts_of(r.kind, content), cfg, active_screeners)
            status = "flagged" if hits else "pending"
            uid = f"{UID_PREFIX[r.kind]}-{r.id:06d}"
            late = r.status != "active"
            amount = int(cfg.pay.get(r.kind, 0))
            if db.is_postgres:
                got = conn.execute(PG_SUBMIT, {
                    "dres": 0 if late else 1, "item_id": r.item_id, "res_id": r.id, "uid": uid, "kind": r.kind,
                    "wid": wid, "emotion": r.emotion, "lang": r.lang, "situation_uid": r.situation_uid,
                    "content": json.dumps(content, ensure_ascii=False), "status": status,
                    "screen": json.dumps({"hits": hits} if hits else {}, ensure_ascii=False), "was_flagged": bool(hits),
                    "t": t, "amount": amount, "currency": cfg.currency}).one()
                if got.n_item != 1:  # timed out and the item filled meanwhile: nothing was written
                    raise Conflict("this task's time ran out and it has been filled by others", code="lease_expired")
            else:
                if not late:
                    conn.execute(U_SUBMIT, {"item_id": r.item_id})
                elif conn.execute(U_SUBMIT_LATE, {"item_id": r.item_id}).rowcount != 1:
                    raise Conflict("this task's time ran out and it has been filled by others", code="lease_expired")
                conn.execute(U_RES_DONE, {"res_id": r.id})
                sub_id = conn.execute(I_SUB, {
                    "uid": uid, "kind": r.kind, "item_id": r.item_id, "worker_id": wid, "reservation_id": r.id,
                    "emotion": r.emotion, "lang": r.lang, "situation_uid": r.situation_uid, "content": content,
                    "status": status, "screen": {"hits": hits} if hits else {}, "source": "crowd", "version": 1,
                    "was_flagged": bool(hits), "reviewed_by": None, "created_at": t, "updated_at": t}).scalar_one()
                conn.execute(I_LEDGER, {
                    "worker_id": wid, "submission_id": sub_id, "kind": r.kind, "amount": amount,
                    "currency": cfg.currency, "status": "payable", "created_at": t, "updated_at": t})
            if hits:  # submissions carry worker and time themselves; the log records the auto-flags
                conn.execute(insert(AUDIT).values(at=t, actor="prescreen", action="flag", target=uid,
                                                  detail={"from": "new", "to": "flagged", "hits": hits}))
            return SubmitResult(uid, status, hits)

    try:
        return retrying(txn)
    except IntegrityError as e:  # pragma: no cover - guarded by the reservation lock
        raise CrowdError(f"could not store the submission: {e.orig}") from None


def own_submission(db: CrowdDB, wid: str, uid: str) -> dict[str, Any]:
    """One of the worker's own submissions; anyone else's is 'not found' (not 'forbidden', which
    would confirm it exists)."""
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9._:-]{1,100}", uid):
        raise NotFound("no such submission")
    with db.read() as s:
        sub = s.execute(select(Submission).where(Submission.uid == uid)).scalar_one_or_none()
        if sub is None or sub.worker_id != wid:
            raise NotFound("no such submission")
        return {"uid": sub.uid, "kind": sub.kind, "emotion": sub.emotion, "status": sub.status,
                "content": sub.content, "situation_uid": sub.situation_uid, "created_at": sub.created_at}


def assignment_by_token(db: CrowdDB, wid: str, token: str) -> Assignment | None:
    """The worker's lease for a token (to show the form again after an error)."""
    if not valid_token(token):
        return None
    cfg = db.config()
    with db.engine.connect() as conn:
        r = conn.execute(select(RES.c.token, RES.c.worker_id, RES.c.item_id, RES.c.expires_at, RES.c.created_at)
                         .where(RES.c.token == token)).first()
        if r is None or r.worker_id != wid:
            return None
        return _assignment(r.token, r.expires_at, r.created_at + cfg.lease_seconds, _item(conn, r.item_id),
                           resumed=True)


__all__ = [
    "Assignment",
    "NoTask",
    "SubmitResult",
    "assign",
    "create_workers",
    "extend",
    "register_worker",
    "release",
    "reset_worker_key",
    "set_blocked",
    "submit",
]
