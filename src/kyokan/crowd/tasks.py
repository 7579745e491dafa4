"""Creating the items to collect: situations per emotion (round 1), dialogues per
emotion–situation pair (round 2, from approved crowd situations or a file), rating packets
(round 3, from the human-evaluation stage)."""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kyokan.crowd.db import CrowdDB
from kyokan.crowd.models import AuditEntry, Item, Submission
from kyokan.errors import InputError, KyokanError, Problem
from kyokan.text import bidi_controls, clean_text, is_blank

_CROWD_UID = re.compile(r"[sdr]-[0-9]{6}")
_SITUATION_ID = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


def _add_items(db: CrowdDB, rows: list[dict[str, Any]], actor: str, action: str) -> list[str]:
    """Insert items whose key is new; returns the keys created (existing ones are left alone)."""
    now = time.time()
    created: list[str] = []
    with db.write() as s:
        keys = [r["key"] for r in rows]
        have = set()
        for i in range(0, len(keys), 500):
            have |= set(s.scalars(select(Item.key).where(Item.key.in_(keys[i:i + 500]))))
        for r in rows:
            if r["key"] in have:
                continue
            have.add(r["key"])
            s.add(Item(kind=r["kind"], key=r["key"], emotion=r.get("emotion"), lang=r.get("lang", "ja"),
                       situation_uid=r.get("situation_uid"), payload=r.get("payload", {}),
                       target=int(r["target"]), n_submitted=0, n_reserved=0, closed=False, created_at=now))
            created.append(r["key"])
        s.add(AuditEntry(at=now, actor=actor, action=action, target="", detail={"created": len(created),
                                                                                 "skipped": len(rows) - len(created)}))
    return created


def create_situation_tasks(db: CrowdDB, *, taxonomy: str = "goemotions28", target: int | None = None,
                           emotions: Iterable[str] | None = None, lang: str = "ja",
                           targets: dict[str, int] | None = None, actor: str = "cli") -> list[str]:
    """One round-1 item per emotion of the taxonomy (``targets`` overrides per emotion)."""
    from kyokan.taxonomy import get_taxonomy

    tax = get_taxonomy(taxonomy)
    cfg = db.config()
    default = target if target is not None else cfg.target_situation
    if default < 1:
        raise KyokanError("--target must be at least 1")
    chosen: list[str] = []
    for e in emotions if emotions is not None else tax.ids:
        canon = tax.normalize(e)
        if canon is None:
            near = tax.suggest(e)
            raise KyokanError(f"unknown emotion {e!r} in {tax.name}" + (f"; did you mean {near!r}?" if near else ""))
        chosen.append(canon)
    per = {}
    for k, v in (targets or {}).items():
        canon = tax.normalize(k)
        if canon is None:
            raise KyokanError(f"targets: unknown emotion {k!r} in {tax.name}")
        per[canon] = int(v)
    rows = [{"kind": "situation", "key": f"situation:{lang}:{e}", "emotion": e, "lang": lang,
             "target": per.get(e, default), "payload": {"taxonomy": tax.name}} for e in chosen]
    return _add_items(db, rows, actor, "tasks.situations")


def create_dialogue_tasks(db: CrowdDB, *, target: int | None = None, situations: Iterable[str] | None = None,
                          actor: str = "cli") -> list[str]:
    """One round-2 item per approved situation (all approved ones, or the given uids)."""
    cfg = db.config()
    tgt = target if target is not None else cfg.target_dialogue
    if tgt < 1:
        raise KyokanError("--target must be at least 1")
    with db.read() as s:
        q = select(Submission.uid, Submission.emotion, Submission.lang).where(
            Submission.kind == "situation", Submission.status == "approved")
        if situations is not None:
            q = q.where(Submission.uid.in_(list(situations)))
        found = s.execute(q.order_by(Submission.id)).all()
    rows: list[dict[str, Any]] = [{"kind": "dialogue", "key": f"dialogue:{uid}", "emotion": emo, "lang": lang,
             "situation_uid": uid, "target": tgt, "payload": {}} for uid, emo, lang in found]
    return _add_items(db, rows, actor, "tasks.dialogues")


def read_situation_file(path: str | Path, *, taxonomy: str = "goemotions28", lang: str = "ja") -> list[dict[str, Any]]:
    """Situations from JSONL (``{"id","emotion","situation"|"text","lang"?}``) or CSV with those
    columns; every bad row is reported as PATH:LINE: field: message."""
    from kyokan.taxonomy import get_taxonomy

    tax = get_taxonomy(taxonomy)
    p = Path(path)
    if not p.exists():
        raise KyokanError(f"{p}: no such file")
    raw: list[tuple[int, Any]] = []
    if p.suffix.lower() == ".csv":
        with open(p, encoding="utf-8-sig", newline="") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                raw.append((i, row))
    else:
        with open(p, encoding="utf-8") as f:
            for i, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    raw.append((i, json.loads(text)))
                except json.JSONDecodeError as e:
                    raw.append((i, e))
    probs: list[Problem] = []
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, row in raw:
        def bad(fld: str | None, msg: str, line: int = line) -> None:
            probs.append(Problem(str(p), line, fld, msg))

        if isinstance(row, json.JSONDecodeError):
            bad(None, f"not JSON: {row.msg}")
            continue
        if not isinstance(row, dict):
            bad(None, "expected an object")
            continue
        sid = str(row.get("id") or row.get("situation_id") or "").strip()
        sit_text = row.get("situation", row.get("text"))
        emo = row.get("emotion")
        rl = str(row.get("lang") or lang)
        if not sid:
            bad("id", "missing")
        elif not _SITUATION_ID.fullmatch(sid):
            bad("id", "must be 1–100 characters without control characters")
        elif _CROWD_UID.fullmatch(sid):
            bad("id", f"{sid!r} looks like a crowd id (s-NNNNNN); use another scheme")
        elif sid in seen:
            bad("id", f"duplicate id {sid!r} (first at line {seen[sid]})")
        else:
            seen[sid] = line
        if not isinstance(sit_text, str) or is_blank(sit_text):
            bad("situation", "missing or empty (after removing invisible characters)")
        elif bidi_controls(sit_text):
            bad("situation", f"contains text-direction control characters ({', '.join(bidi_controls(sit_text)[:3])})")
        canon = tax.normalize(emo) if isinstance(emo, str) else None
        if canon is None:
            near = tax.suggest(emo) if isinstance(emo, str) else None
            bad("emotion", f"unknown label {emo!r} in {tax.name}" + (f"; did you mean {near!r}?" if near else ""))
        if isinstance(sit_text, str) and not is_blank(sit_text) and not bidi_controls(sit_text) and canon and sid:
            out.append({"id": sid, "emotion": canon, "lang": rl, "situation": clean_text(sit_text).strip()})
    if probs:
        raise InputError(probs)
    if not out:
        raise KyokanError(f"{p}: no situations")
    return out


def import_situations(db: CrowdDB, rows: list[dict[str, Any]], *, actor: str = "cli") -> list[str]:
    """Store situations from a file as approved, imported entries (no worker, no ledger)."""
    now = time.time()
    with db.write() as s:
        uids = [r["id"] for r in rows]
        have = set()
        for i in range(0, len(uids), 500):
            have |= set(s.scalars(select(Submission.uid).where(Submission.uid.in_(uids[i:i + 500]))))
        added = []
        for r in rows:
            if r["id"] in have:
                continue
            s.add(Submission(uid=r["id"], kind="situation", item_id=None, worker_id=None, emotion=r["emotion"],
                             lang=r["lang"], content={"text": r["situation"]}, status="approved", screen={},
                             source="import", version=1, was_flagged=False, created_at=now, updated_at=now))
            added.append(r["id"])
        s.add(AuditEntry(at=now, actor=actor, action="situations.import", target="",
                         detail={"imported": len(added), "existing": len(rows) - len(added)}))
    return uids


def read_rating_packets(path: str | Path) -> list[dict[str, Any]]:
    """Rating packets (JSONL). Two layouts:

    * one item per packet::

        {"id": "p-001", "item": {...shown to the rater...},
         "metrics": ["empathy", {"id": "fluency", "ja": "流暢さ", "en": "Fluency"}],
         "scale": {"min": 1, "max": 5}, "target": 3}

    * a rater's packet of several items, as ``kyokan human design`` writes ``tasks.jsonl``::

        {"assignment": "A01", "scales": [{"name", "en", "ja", "kind", "low", "high", ...}],
         "items": [{"item": "CODE", "situation", "turns", ...}, ...]}

      (one rater per packet by default: the design already decided who rates what).

    Returned as ``{"id", "payload", "target", "emotion", "lang"}``.
    """
    p = Path(path)
    if not p.exists():
        raise KyokanError(f"{p}: no such file")
    probs: list[Problem] = []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    with open(p, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue

            def bad(fld: str | None, msg: str, line: int = line) -> None:
                probs.append(Problem(str(p), line, fld, msg))

            try:
                d = json.loads(text)
            except json.JSONDecodeError as e:
                bad(None, f"not JSON: {e.msg}")
                continue
            if not isinstance(d, dict):
                bad(None, "expected an object")
                continue
            grouped = "assignment" in d and "items" in d
            pid = str(d.get("assignment") if grouped else d.get("id") or "")
            if not pid or pid in seen:
                bad("assignment" if grouped else "id", "missing" if not pid else f"duplicate id {pid!r}")
            seen.add(pid)
            tgt = d.get("target")
            if tgt is not None and (not isinstance(tgt, int) or isinstance(tgt, bool) or tgt < 1):
                bad("target", "must be a positive integer")
            if grouped:
                items = d.get("items")
                scales = d.get("scales")
                if not isinstance(items, list) or not items or not all(isinstance(x, dict) and x.get("item") for x in items):
                    bad("items", "must be a non-empty list of objects with an item code")
                    continue
                if not isinstance(scales, list) or not scales or not all(isinstance(x, dict) and x.get("name") for x in scales):
                    bad("scales", "must be a non-empty list of scales with a name")
                    continue
                metrics: Any = [{"id": sc["name"], "ja": sc.get("ja"), "en": sc.get("en"), "kind": sc.get("kind", "likert"),
                            "min": sc.get("low", 1), "max": sc.get("high", 5),
                            "question_ja": sc.get("statement_ja", ""), "question_en": sc.get("statement_en", "")}
                           for sc in scales]
                payload = {"items": [{"code": str(x["item"]), "item": x} for x in items], "metrics": metrics,
                           "assignment": pid, "style": d.get("style")}
                lang = str(items[0].get("lang") or "ja")
                emotion = None
                default_target = 1
            else:
                item = d.get("item")
                metrics = d.get("metrics")
                if not isinstance(item, dict):
                    bad("item", "must be an object")
                    continue
                if not isinstance(metrics, list) or not metrics or not all(
                        isinstance(m, str) or (isinstance(m, dict) and m.get("id")) for m in metrics):
                    bad("metrics", "must be a non-empty list of ids or {id, ja, en}")
                    continue
                sc = d.get("scale") or {"min": 1, "max": 5}
                if not (isinstance(sc, dict) and isinstance(sc.get("min", 1), int) and isinstance(sc.get("max", 5), int)
                        and sc.get("min", 1) < sc.get("max", 5) <= sc.get("min", 1) + 100):
                    bad("scale", "must be {min, max} integers with min < max")
                    continue
                payload = {"items": [{"code": pid, "item": item}], "metrics": metrics, "scale": sc,
                           "instructions": d.get("instructions", {})}
                lang = str(d.get("lang") or item.get("lang") or "ja")
                emotion = item.get("emotion")
                default_target = None
            out.append({"id": pid, "payload": payload, "target": tgt or default_target, "emotion": emotion,
                        "lang": lang})
    if probs:
        raise InputError(probs)
    if not out:
        raise KyokanError(f"{p}: no rating packets")
    return out


def create_rating_tasks(db: CrowdDB, packets: list[dict[str, Any]], *, target: int | None = None,
                        actor: str = "cli") -> list[str]:
    """Round 3: one item per packet; ``target`` raters each (packet target, else ``target``,
    else config ``target_rating``)."""
    cfg = db.config()
    rows = [{"kind": "rating", "key": f"rating:{d['id']}", "emotion": d.get("emotion"), "lang": d.get("lang", "ja"),
             "payload": d["payload"], "target": int(target or d.get("target") or cfg.target_rating)}
            for d in packets]
    return _add_items(db, rows, actor, "tasks.ratings")
