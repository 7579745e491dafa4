"""Batch harmlessness screen with an LLM judge: low scorers among pending entries are flagged
for the lead; every score is stored in the entry's ``screen`` field and the audit log."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from kyokan.crowd.content import texts_of
from kyokan.crowd.db import CrowdDB
from kyokan.crowd.models import AuditEntry, Submission
from kyokan.crowd.screen import judge_harmlessness


def _as_text(kind: str, content: dict[str, Any]) -> str:
    if kind == "dialogue":
        return "\n".join(f"{t['role']}: {t['text']}" for t in content.get("turns", []))
    return "\n".join(texts_of(kind, content))


def screen_pending(db: CrowdDB, model: Any, *, threshold: int = 2, kind: str | None = None,
                   limit: int = 10_000) -> dict[str, Any]:
    """Judge every pending entry not judged yet; flag those scored ``<= threshold``."""
    with db.read() as s:
        q = select(Submission.uid, Submission.kind, Submission.lang, Submission.content).where(
            Submission.status == "pending", Submission.kind.in_([kind] if kind else ["situation", "dialogue"]))
        rows = [r for r in s.execute(q.order_by(Submission.id).limit(limit)).all()]
    rows = [r for r in rows]
    by_lang: dict[str, list[Any]] = {}
    for r in rows:
        by_lang.setdefault("ja" if r.lang.startswith("ja") else "en", []).append(r)
    spec = getattr(model, "spec", "") or type(model).__name__
    flagged = scored = unscored = 0
    for lang, group in by_lang.items():
        results = judge_harmlessness(model, [_as_text(r.kind, r.content) for r in group], lang=lang)
        now = time.time()
        with db.write() as s:
            for r, res in zip(group, results, strict=True):
                sub = s.execute(select(Submission).where(Submission.uid == r.uid).with_for_update()).scalar_one()
                screen = dict(sub.screen or {})
                screen["judge"] = {"model": spec, "score": res["score"], "error": res["error"], "threshold": threshold}
                sub.screen = screen
                if res["score"] is None:
                    unscored += 1
                    continue
                scored += 1
                if res["score"] <= threshold and sub.status == "pending":
                    sub.status = "flagged"
                    sub.was_flagged = True
                    sub.updated_at = now
                    flagged += 1
                    s.add(AuditEntry(at=now, actor=f"judge:{spec}", action="flag", target=sub.uid,
                                     detail={"from": "pending", "to": "flagged", "score": res["score"]}))
    return {"candidates": len(rows), "scored": scored, "unscored": unscored, "flagged": flagged, "model": spec}
