"""Export approved entries in the kyokan dialogue format (``kyokan data validate`` accepts it),
plus the approved situations and the ratings, each with a provenance sidecar."""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kyokan.crowd.db import CrowdDB, redact
from kyokan.crowd.models import Item, Setting, Submission
from kyokan.io import sidecar, write_json, write_jsonl

EXPORT_SCHEMA = 1


def _salt(db: CrowdDB) -> str:
    """A per-database salt for worker pseudonyms, created once."""
    with db.write() as s:
        row = s.get(Setting, "pseudonym_salt")
        if row is None:
            row = Setting(key="pseudonym_salt", value=secrets.token_hex(16))
            s.add(row)
        return str(row.value)


def pseudonym(salt: str, wid: str | None) -> str | None:
    if wid is None:
        return None
    return "w-" + hashlib.sha256(f"{salt}\0{wid}".encode()).hexdigest()[:10]


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def collect(db: CrowdDB, *, raw_worker_ids: bool = False, include_pending_ratings: bool = False) -> dict[str, Any]:
    """Approved dialogues (with their situation's current text), approved situations, approved
    ratings (and, with ``include_pending_ratings``, the not yet reviewed ones, marked so)."""
    salt = _salt(db)

    def who(w: str | None) -> str | None:
        return w if raw_worker_ids else pseudonym(salt, w)

    dialogues, situations, ratings = [], [], []
    skipped: dict[str, int] = {"situation_not_approved": 0, "ratings_not_approved": 0}
    rating_states = ("approved", "pending") if include_pending_ratings else ("approved",)
    with db.read() as s:
        sits = {r.uid: r for r in s.scalars(select(Submission).where(Submission.kind == "situation"))}
        for r in s.scalars(select(Submission).where(Submission.kind == "dialogue", Submission.status == "approved")
                           .order_by(Submission.id)):
            sit = sits.get(r.situation_uid or "")
            if sit is None or sit.status != "approved":
                skipped["situation_not_approved"] += 1
                continue
            dialogues.append({
                "id": r.uid, "situation_id": sit.uid, "emotion": r.emotion, "lang": r.lang,
                "situation": sit.content["text"], "turns": r.content["turns"],
                "meta": {"source": "crowd", "worker": who(r.worker_id), "review": "approved",
                         "edited": r.version > 1, "situation_edited": sit.version > 1,
                         "flagged_then_kept": r.was_flagged, "created_at": _iso(r.created_at),
                         "situation_source": sit.source, "situation_worker": who(sit.worker_id)},
            })
        for sit in sorted(sits.values(), key=lambda x: x.id):
            if sit.status == "approved":
                situations.append({"id": sit.uid, "emotion": sit.emotion, "lang": sit.lang,
                                   "situation": sit.content["text"],
                                   "meta": {"source": sit.source, "worker": who(sit.worker_id),
                                            "edited": sit.version > 1, "flagged_then_kept": sit.was_flagged}})
        packets = {i.id: i for i in s.scalars(select(Item).where(Item.kind == "rating"))}
        skipped["ratings_not_approved"] = len(s.scalars(select(Submission.id).where(
            Submission.kind == "rating", Submission.status.not_in(rating_states))).all())
        for r in s.scalars(select(Submission).where(Submission.kind == "rating",
                                                    Submission.status.in_(rating_states))
                           .order_by(Submission.id)):
            it = packets.get(r.item_id or -1)
            assignment = (it.payload or {}).get("assignment") if it else None
            # one row per (rater, item): the layout `kyokan human import` reads
            for code, vals in r.content.get("ratings", {}).items():
                ratings.append({"rater": who(r.worker_id), "item": code,
                                **({"assignment": assignment} if assignment else {}),
                                "ratings": vals, "comment": r.content.get("comment", ""),
                                "packet": it.key.removeprefix("rating:") if it else None, "submission": r.uid,
                                "review": r.status, "created_at": _iso(r.created_at)})
    return {"dialogues": dialogues, "situations": situations, "ratings": ratings, "skipped": skipped}


def export(db: CrowdDB, out: str | Path, *, situations_out: str | Path | None = None,
           ratings_out: str | Path | None = None, raw_worker_ids: bool = False,
           include_pending_ratings: bool = False) -> dict[str, Any]:
    """Write the files; returns the summary that also goes to ``OUT.provenance.json`` (:func:`kyokan.io.sidecar`)."""
    from kyokan import __version__

    data = collect(db, raw_worker_ids=raw_worker_ids, include_pending_ratings=include_pending_ratings)
    n = write_jsonl(out, data["dialogues"])
    summary: dict[str, Any] = {
        "dialogues": n, "output": str(out), "skipped": data["skipped"],
        "provenance": {"tool": "kyokan crowd export", "kyokan": __version__, "export_schema": EXPORT_SCHEMA,
                       "db": redact(db.url), "db_revision": db.revision(), "exported_at": _iso(time.time()),
                       "config": db.config(fresh=True).to_dict(),
                       "worker_ids": "raw" if raw_worker_ids else "pseudonymised (salted SHA-256)",
                       "ratings_included": "approved and pending" if include_pending_ratings else "approved"},
    }
    if situations_out:
        summary["situations"] = write_jsonl(situations_out, data["situations"])
        summary["situations_output"] = str(situations_out)
    if ratings_out:
        summary["ratings"] = write_jsonl(ratings_out, data["ratings"])
        summary["ratings_output"] = str(ratings_out)
    write_json(sidecar(out, "provenance"), summary)
    return summary
