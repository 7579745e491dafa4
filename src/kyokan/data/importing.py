"""``kyokan data import``: rows of another tool's CSV/TSV/JSONL file → kyokan records, by a column map.

Two kinds of output:

- ``generations`` — the GEN rows ``kyokan eval responses`` scores: ``id``, ``response``, and as
  mapped ``context``, ``reference``, ``emotion``, ``lang``, ``source``, and EPITOME levels
  (targets ``epitome.<er|ex|ip>.<generated|reference>``);
- ``dialogues`` — kyokan dialogue records: ``id``, ``emotion``, ``situation``, ``lang`` and the
  turns, from a JSON ``turns`` column or from ``context`` (speaker) + ``reply`` (listener);
  validated against ``--taxonomy`` like every dialogue file (without a ``situation`` column the
  first turn's text is the situation).

The map is ``TARGET=COLUMN`` pairs; a column may be named by header or, for headerless CSV, by
1-based number. Preset ``empo`` reads EmPO's released prediction files (kyokan.data.empo).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, KyokanError, Problem

GEN_TARGETS = ("id", "response", "context", "reference", "emotion", "lang", "source")
DIALOGUE_TARGETS = ("id", "emotion", "situation", "lang", "turns", "context", "reply", "situation_id")
LEVEL_TARGETS = tuple(f"epitome.{m}.{w}" for m in ("er", "ex", "ip") for w in ("generated", "reference"))
#: EmPO release prediction columns (the ``empo`` preset maps these)
EMPO_MAP = {"response": "gens", "context": "prevs", "reference": "gen_targets", "emotion": "emotions",
            **{f"epitome.{m}.{w}": f"{'pred' if w == 'generated' else 'gt'}_{m.upper()}_scores"
               for m in ("er", "ex", "ip") for w in ("generated", "reference")}}


def parse_map(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in pairs:
        for part in item.split(","):
            if not part.strip():
                continue
            target, sep, col = part.partition("=")
            if not sep or not target.strip() or not col.strip():
                raise KyokanError(f"--map {part!r}: expected TARGET=COLUMN")
            out[target.strip()] = col.strip()
    return out


def _rows(path: Path, sep: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    from kyokan.data.empo import _read_table
    from kyokan.data.readers import read_jsonl

    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        for r in read_jsonl(path):
            if r.error is not None:
                raise InputError(r.error)
            if not isinstance(r.data, dict):
                raise InputError.at(str(path), r.line, None, "expected a JSON object")
            yield r.line, r.data
        return
    delim = sep or ("\t" if suffix == ".tsv" else ",")
    rows = _read_table(path, delim)
    try:
        _, header = next(rows)
    except StopIteration:
        raise InputError.at(str(path), None, None, "file has no header") from None
    header = [h.strip() for h in header]
    for line, cells in rows:
        if len(cells) != len(header):
            raise InputError.at(str(path), line, None, f"row has {len(cells)} fields, header has {len(header)}")
        row: dict[str, Any] = dict(zip(header, cells, strict=True))
        row.update({str(i + 1): c for i, c in enumerate(cells)})
        yield line, row


def _get(row: Mapping[str, Any], col: str) -> Any:
    cur: Any = row
    if col in row:
        return row[col]
    for part in col.split("."):  # JSONL: nested fields as a.b
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _level(v: Any) -> int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f in (0.0, 1.0, 2.0) else None


def import_rows(path: str | Path, mapping: Mapping[str, str], *, kind: str = "generations", sep: str | None = None,
                lang: str | None = None, source: str | None = None, taxonomy: str | None = None) -> list[dict[str, Any]]:
    """The records of ``path`` (all or nothing: every problem in one ``InputError``)."""
    p = Path(path)
    if not p.exists():
        raise InputError.at(str(p), None, None, "file not found")
    allowed = (GEN_TARGETS + LEVEL_TARGETS) if kind == "generations" else DIALOGUE_TARGETS
    if kind not in ("generations", "dialogues"):
        raise KyokanError(f"unknown kind {kind!r} (generations or dialogues)")
    unknown = [t for t in mapping if t not in allowed]
    if unknown:
        raise KyokanError(f"unknown map target(s) {unknown}; for {kind}: {', '.join(allowed)}")
    need = ("response",) if kind == "generations" else ()
    missing = [t for t in need if t not in mapping]
    if missing:
        raise KyokanError(f"--map needs {', '.join(missing)}=COLUMN")
    out: list[dict[str, Any]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    n = 0
    for line, row in _rows(p, sep):
        n += 1
        vals = {t: _get(row, c) for t, c in mapping.items()}
        absent = [mapping[t] for t, v in vals.items() if v is None]
        if absent:
            problems.append(Problem(str(p), line, absent[0], "column not in the file"))
            continue
        rid = str(vals.get("id") if vals.get("id") not in (None, "") else n - 1).strip()
        if rid in seen:
            problems.append(Problem(str(p), line, mapping.get("id", "id"), f"duplicate id {rid!r}"))
            continue
        seen.add(rid)
        if kind == "generations":
            rec: dict[str, Any] = {"id": rid, "response": str(vals["response"]), "lang": vals.get("lang") or lang or "en"}
            for t in ("context", "reference", "emotion"):
                if t in vals:
                    rec[t] = str(vals[t])
            if source or vals.get("source"):
                rec["source"] = str(vals.get("source") or source)
            lv = {t: vals[t] for t in LEVEL_TARGETS if t in vals}
            if lv:
                if len(lv) != len(LEVEL_TARGETS):
                    raise KyokanError(f"map all six epitome targets or none: {', '.join(LEVEL_TARGETS)}")
                levels: dict[str, dict[str, int]] = {}
                for t, v in lv.items():
                    lvl = _level(v)
                    if lvl is None:
                        problems.append(Problem(str(p), line, mapping[t], f"EPITOME level must be 0, 1 or 2, got {v!r}"))
                        break
                    _, m, w = t.split(".")
                    levels.setdefault(m, {})[w] = lvl
                else:
                    rec["epitome_levels"] = levels
                if "epitome_levels" not in rec:
                    continue
            out.append(rec)
        else:
            if "turns" in vals:
                turns = vals["turns"]
                if isinstance(turns, str):
                    try:
                        turns = json.loads(turns)
                    except json.JSONDecodeError as e:
                        problems.append(Problem(str(p), line, mapping["turns"], f"not a JSON list of turns: {e.msg}"))
                        continue
            elif "context" in vals and "reply" in vals:
                turns = [{"role": "speaker", "text": str(vals["context"])}, {"role": "listener", "text": str(vals["reply"])}]
            else:
                raise KyokanError("dialogues need turns=COLUMN, or context=COLUMN and reply=COLUMN")
            out.append({"id": rid, "situation_id": str(vals.get("situation_id") or rid),
                        "emotion": vals.get("emotion"), "lang": vals.get("lang") or lang or "en",
                        # no situation column: the first turn stands in (kyokan dialogues need one)
                        "situation": str(vals.get("situation") or (turns[0].get("text", "") if turns and isinstance(turns[0], dict) else "")),
                        "turns": turns,
                        "meta": {"source": source or "import", "imported_from": str(p), "line": line}})
    if kind == "dialogues" and out:
        from kyokan.data.validate import check_record, taxonomy_for

        tax = taxonomy_for(str(p), "jsonl", taxonomy)
        checked: list[dict[str, Any]] = []
        for rec in out:
            good, probs = check_record(rec, tax, str(p), int(rec["meta"]["line"]), allow_unlabelled=rec["emotion"] is None)
            problems.extend(probs)
            if good is not None:
                checked.append(good)
        out = checked
    if problems:
        raise InputError(problems[:50], len(problems))
    if not out:
        raise InputError.at(str(p), None, None, "no rows")
    return out


def import_empo_predictions(path: str | Path, system: str | None = None) -> list[dict[str, Any]]:
    """EmPO's prediction file → generation rows (with gold reply, history and EPITOME levels)."""
    from kyokan.data.empo import SYSTEM_FILES, read_predictions

    name = system or next((s for s, f in SYSTEM_FILES.items() if Path(path).name == f), Path(path).stem)
    return [p.generation_row(name) for p in read_predictions(path)]
