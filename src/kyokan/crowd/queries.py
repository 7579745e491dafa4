"""Read-only views for the pages and the CLI: progress, workers, review queue, audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from kyokan.crowd.db import CrowdDB
from kyokan.crowd.models import AuditEntry, Edit, Item, LedgerEntry, Submission, Worker
from kyokan.crowd.reviewing import RejectionStats, rejection_stats


def progress(db: CrowdDB) -> dict[str, Any]:
    """Per kind: items, open items, target total, submitted, reserved; per status counts."""
    out: dict[str, Any] = {}
    with db.read() as s:
        for kind, n, n_open, tgt, sub, res in s.execute(
            select(Item.kind, func.count(), func.sum(case((Item.closed.is_(False), 1), else_=0)),
                   func.sum(Item.target), func.sum(Item.n_submitted), func.sum(Item.n_reserved))
            .group_by(Item.kind)
        ):
            out[kind] = {"items": int(n), "open": int(n_open or 0), "target": int(tgt or 0),
                         "submitted": int(sub or 0), "reserved": int(res or 0), "statuses": {}}
        for kind, status, n in s.execute(
            select(Submission.kind, Submission.status, func.count()).group_by(Submission.kind, Submission.status)
        ):
            out.setdefault(kind, {"items": 0, "open": 0, "target": 0, "submitted": 0, "reserved": 0,
                                  "statuses": {}})["statuses"][status] = int(n)
    return out


def items(db: CrowdDB, kind: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    with db.read() as s:
        q = select(Item).order_by(Item.kind, Item.id).limit(limit)
        if kind:
            q = q.where(Item.kind == kind)
        return [{"id": i.id, "kind": i.kind, "key": i.key, "emotion": i.emotion, "target": i.target,
                 "submitted": i.n_submitted, "reserved": i.n_reserved, "closed": i.closed}
                for i in s.scalars(q)]


def worker_summary(db: CrowdDB, wid: str) -> dict[str, Any]:
    cfg = db.config()
    with db.read() as s:
        counts = {f"{k}:{st}": int(n) for k, st, n in s.execute(
            select(Submission.kind, Submission.status, func.count()).where(Submission.worker_id == wid)
            .group_by(Submission.kind, Submission.status))}
        pay = {st: int(a or 0) for st, a in s.execute(
            select(LedgerEntry.status, func.sum(LedgerEntry.amount)).where(LedgerEntry.worker_id == wid)
            .group_by(LedgerEntry.status))}
        rej = rejection_stats(s, wid, cfg.rejection_cap)
    by_kind: dict[str, int] = {}
    for key, n in counts.items():
        k = key.split(":")[0]
        by_kind[k] = by_kind.get(k, 0) + n
    return {"worker": wid, "by_kind": by_kind, "counts": counts, "earned": pay.get("payable", 0),
            "void": pay.get("void", 0), "currency": cfg.currency, "rejections": rej.to_dict()}


def worker_submissions(db: CrowdDB, wid: str, limit: int = 200) -> list[dict[str, Any]]:
    with db.read() as s:
        rows = s.scalars(select(Submission).where(Submission.worker_id == wid)
                         .order_by(Submission.id.desc()).limit(limit)).all()
        return [{"uid": r.uid, "kind": r.kind, "emotion": r.emotion, "status": r.status, "content": r.content,
                 "created_at": r.created_at} for r in rows]


def workers_table(db: CrowdDB, limit: int = 1000) -> list[dict[str, Any]]:
    """Workers with their submission and rejection counts and earnings (three grouped queries,
    whatever the number of workers)."""
    cfg = db.config()
    with db.read() as s:
        ws = s.scalars(select(Worker).order_by(Worker.created_at).limit(limit)).all()
        pay = {(w, st): int(a or 0) for w, st, a in s.execute(
            select(LedgerEntry.worker_id, LedgerEntry.status, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.worker_id, LedgerEntry.status))}
        subs = {w: (int(n), int(r or 0)) for w, n, r in s.execute(
            select(Submission.worker_id, func.count(), func.sum(case((Submission.status == "rejected", 1), else_=0)))
            .where(Submission.source == "crowd", Submission.worker_id.is_not(None)).group_by(Submission.worker_id))}
        out = []
        for w in ws:
            total, rejected = subs.get(w.id, (0, 0))
            rej = RejectionStats(w.id, total, rejected, cfg.rejection_cap)
            out.append({"worker": w.id, "blocked": w.blocked, "client": w.client, "submissions": rej.total,
                        "rejected": rej.rejected, "rate": rej.rate, "allowed": rej.allowed, "left": rej.left,
                        "earned": pay.get((w.id, "payable"), 0), "void": pay.get((w.id, "void"), 0),
                        "over_cap": rej.rejected > rej.allowed})
        return out


def review_queue(db: CrowdDB, *, kind: str | None = None, status: str | None = "pending",
                 limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    with db.read() as s:
        q = select(Submission).where(Submission.source == "crowd")
        if kind:
            q = q.where(Submission.kind == kind)
        if status:
            q = q.where(Submission.status == status)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(Submission.id).limit(limit).offset(offset)).all()
        sit = _situations(s, {r.situation_uid for r in rows if r.situation_uid})
        return [_sub_dict(r, sit) for r in rows], int(total)


def _situations(s: Any, uids: set[str]) -> dict[str, str]:
    if not uids:
        return {}
    return {u: (c or {}).get("text", "") for u, c in s.execute(
        select(Submission.uid, Submission.content).where(Submission.uid.in_(list(uids))))}


def _sub_dict(r: Submission, sit: dict[str, str]) -> dict[str, Any]:
    return {"uid": r.uid, "kind": r.kind, "emotion": r.emotion, "lang": r.lang, "status": r.status,
            "worker": r.worker_id, "content": r.content, "screen": r.screen or {}, "version": r.version,
            "situation_uid": r.situation_uid, "situation": sit.get(r.situation_uid or ""),
            "was_flagged": r.was_flagged, "reviewed_by": r.reviewed_by, "created_at": r.created_at,
            "source": r.source}


def submission_detail(db: CrowdDB, uid: str) -> dict[str, Any] | None:
    cfg = db.config()
    with db.read() as s:
        r = s.execute(select(Submission).where(Submission.uid == uid)).scalar_one_or_none()
        if r is None:
            return None
        d = _sub_dict(r, _situations(s, {r.situation_uid} if r.situation_uid else set()))
        d["edits"] = [{"version": e.version, "editor": e.editor, "before": e.before, "after": e.after,
                       "note": e.note, "at": e.at}
                      for e in s.scalars(select(Edit).where(Edit.submission_id == r.id).order_by(Edit.id))]
        d["audit"] = [{"at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail}
                      for a in s.scalars(select(AuditEntry).where(AuditEntry.target == uid).order_by(AuditEntry.id))]
        d["rejections"] = rejection_stats(s, r.worker_id, cfg.rejection_cap).to_dict() if r.worker_id else None
        if r.item_id is not None:
            it = s.get(Item, r.item_id)
            d["payload"] = dict(it.payload or {}) if it else {}
        return d


def audit_log(db: CrowdDB, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    with db.read() as s:
        return [{"at": a.at, "actor": a.actor, "action": a.action, "target": a.target, "detail": a.detail}
                for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset))]


#: high-volume entries anyone on the internet can cause; the default audit view leaves them out
#: so a registration or login flood cannot push the reviewers' actions off the page
WORKER_ACTIONS = ("worker.register", "worker.claim")
SECURITY_ACTIONS = ("login.failed",)
AUDIT_VIEWS = ("staff", "workers", "security", "all")


def audit_page(db: CrowdDB, view: str = "staff", *, limit: int = 200, offset: int = 0) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page of the audit log in a view (staff: reviews, edits, decisions, tasks, logins,
    accounts, blocks; workers: registrations and claims; security: failed logins; all), newest
    first, and the number of entries in each view."""
    noisy = (*WORKER_ACTIONS, *SECURITY_ACTIONS)
    where = {"staff": AuditEntry.action.not_in(noisy), "workers": AuditEntry.action.in_(WORKER_ACTIONS),
             "security": AuditEntry.action.in_(SECURITY_ACTIONS), "all": None}
    with db.read() as s:
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
        cond = where[view]
        if cond is not None:
            q = q.where(cond)
        rows = [{"at": a.at, "actor": a.actor, "action": a.action, "target": a.target, "detail": a.detail}
                for a in s.scalars(q)]
        by_action = dict(s.execute(select(AuditEntry.action, func.count()).group_by(AuditEntry.action)).tuples().all())
    counts = {"workers": sum(by_action.get(a, 0) for a in WORKER_ACTIONS),
              "security": sum(by_action.get(a, 0) for a in SECURITY_ACTIONS),
              "all": sum(by_action.values())}
    counts["staff"] = counts["all"] - counts["workers"] - counts["security"]
    return rows, {k: int(v) for k, v in counts.items()}
