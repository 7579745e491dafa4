"""Load what to rate, and write a design as rating packets (CSV for crowdsourcing platforms, JSONL
tasks for the crowd app) plus the key — which goes to its own file, away from the packets."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.human.design import Design, Item
from kyokan.io import write_json, write_jsonl, write_text


def items_from_file(path: str | Path, source: str | None = None) -> list[Item]:
    """Dialogues of a kyokan file as items; the source is ``source``, else each record's
    ``meta.generation.model`` (generated) / ``meta.source``, else the file name."""
    from kyokan.data import read_records

    out = []
    for rec in read_records(path, allow_unlabelled=True):
        meta = rec.get("meta") or {}
        g = meta.get("generation")
        gen: dict[str, Any] = g if isinstance(g, dict) else {}
        src = source or gen.get("model") or meta.get("source") or Path(path).stem
        out.append(Item(str(rec["id"]), src, rec.get("emotion"), rec.get("lang") or "ja", rec.get("situation") or "",
                        [{"role": t["role"], "text": t["text"]} for t in rec["turns"]]))
    if not out:
        raise KyokanError(f"{path}: no dialogues")
    return out


def parse_inputs(specs: list[str]) -> list[tuple[Path, str | None]]:
    """``PATH`` or ``NAME=PATH`` (NAME: the source label to use for every dialogue of the file)."""
    out = []
    for s in specs:
        name, sep, p = s.partition("=")
        if sep and not Path(s).exists():
            out.append((Path(p), name or None))
        else:
            out.append((Path(s), None))
    return out


#: role labels of a packet's dialogue text, in the item's language (Japanese: the 話し手/聞き手 of
#: the crowd app and the judge prompts, i.e. EmplifAI's patient/supporter)
ROLE_LABELS = {"ja": {"speaker": "話し手", "listener": "聞き手"}, "en": {"speaker": "Speaker", "listener": "Listener"}}


def _render(turns: list[dict[str, str]], upto: int | None = None, lang: str | None = None) -> str:
    names = ROLE_LABELS.get(lang or "en", ROLE_LABELS["en"])
    sep = "：" if lang == "ja" else ": "
    sel = turns if upto is None else turns[:upto]
    return "\n".join(f"{names.get(t['role'], t['role'])}{sep}{t['text']}" for t in sel)


def packets_csv(design: Design) -> str:
    """One row per (assignment, position); the rating columns are left empty to be filled in.
    Fill ``rater`` with the worker id; re-import the filled file with ``kyokan human import``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    scale_cols = [s.name for s in design.scales]
    w.writerow(["assignment", "position", "item", "rater", "lang", "situation", "dialogue", "response", *scale_cols])
    for t in design.tasks:
        for pos, it in enumerate(t.items, 1):
            if design.rate_last:
                dialogue, response = _render(it.turns, len(it.turns) - 1, it.lang), it.turns[-1]["text"]
            else:
                dialogue, response = _render(it.turns, lang=it.lang), ""
            w.writerow([t.assignment, pos, it.code, "", it.lang, it.situation, dialogue, response, *[""] * len(scale_cols)])
    return buf.getvalue()


def write_design(design: Design, out_dir: str | Path, key_path: str | Path, provenance: dict[str, Any]) -> dict[str, str]:
    out = Path(out_dir)
    key = Path(key_path)
    if key.resolve().is_relative_to(out.resolve()):
        raise KyokanError(f"the key file {key} must not be inside the packet folder {out} (it reveals the sources)")
    write_text(out / "packets.csv", packets_csv(design))
    write_jsonl(out / "tasks.jsonl", ({"assignment": t.assignment, "style": design.style,
                                       "scales": [s.to_dict() for s in design.scales],
                                       "items": [dict(it.public(design.rate_last), position=p)
                                                 for p, it in enumerate(t.items, 1)]} for t in design.tasks))
    summary = design.summary()
    write_json(out / "design.json", {**summary, "scales": [s.to_dict() for s in design.scales],
                                     "files": {"packets": "packets.csv", "tasks": "tasks.jsonl"},
                                     "key_kept_separately": True,
                                     # input paths and source names stay in the key's provenance only
                                     "provenance": {k: v for k, v in provenance.items() if k != "config"}})
    write_json(key, {**design.key(), "provenance": provenance})
    return {"packets": str(out / "packets.csv"), "tasks": str(out / "tasks.jsonl"), "design": str(out / "design.json"),
            "key": str(key)}
