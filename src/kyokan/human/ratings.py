"""Import ratings (CSV/JSONL) against a survey key, check attention, aggregate per item and source.

Every problem is reported as ``PATH:LINE: field: message`` and nothing is written until the
whole input is clean (``InputError`` → exit 2). Rows name a ``rater`` and an ``item`` (the
opaque code from the packets) and give one value per scale, either as columns (CSV, flat JSONL)
or under ``scores`` / ``ratings`` (JSONL). Other columns (the packet text) are ignored.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kyokan.errors import InputError, Problem
from kyokan.human.scales import Scale

RATER_FIELDS = ("rater", "worker", "worker_id", "participant", "annotator")
ITEM_FIELDS = ("item", "item_id", "code")


@dataclass
class Rating:
    path: str
    line: int
    rater: str
    item: str
    assignment: str | None
    scores: dict[str, float]


def load_key(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        key = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.at(str(p), None, None, "key file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError.at(str(p), None, None, f"not a JSON key file: {e}") from None
    if not isinstance(key, dict) or "items" not in key or "scales" not in key:
        raise InputError.at(str(p), None, None, "not a kyokan survey key (written by `kyokan human build`)")
    return key


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, Problem | None]]:
    from kyokan.data.readers import csv_rows, read_jsonl

    if path.suffix.lower() in (".csv", ".tsv"):
        yield from csv_rows(path)
        return
    for r in read_jsonl(path):
        if r.error is not None:
            yield r.line, None, r.error
        elif not isinstance(r.data, dict):
            yield r.line, None, Problem(str(path), r.line, None, "expected a JSON object")
        else:
            yield r.line, r.data, None


def _field(row: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    for n in names:
        if n in row:
            return n, row[n]
    return names[0], None


def read_ratings(paths: list[Path], key: dict[str, Any]) -> list[Rating]:
    """Parse and check every rating row; raise one ``InputError`` with every problem found."""
    scales = [Scale.from_dict(s) for s in key["scales"]]
    items = key["items"]
    assignments = {a: set(codes) for a, codes in key.get("assignments", {}).items()}
    problems: list[Problem] = []
    out: list[Rating] = []
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for path in paths:
        p = str(path)
        if not path.exists():
            problems.append(Problem(p, None, None, "file not found"))
            continue
        try:
            for line, row, problem in _rows(path):
                if problem is not None or row is None:
                    problems.append(problem or Problem(p, line, None, "unreadable row"))
                    continue
                flat = dict(row)
                for k in ("scores", "ratings"):
                    if isinstance(row.get(k), dict):
                        flat.update(row[k])
                rf, rater = _field(flat, RATER_FIELDS)
                itf, item = _field(flat, ITEM_FIELDS)
                row_problems: list[Problem] = []
                if rater is None or str(rater).strip() == "":
                    row_problems.append(Problem(p, line, rf, "missing rater id"))
                if item is None or str(item).strip() == "":
                    row_problems.append(Problem(p, line, itf, "missing item code"))
                elif str(item).strip() not in items:
                    row_problems.append(Problem(p, line, itf, f"unknown item {str(item).strip()!r}: not in the survey key"))
                assignment = flat.get("assignment")
                assignment = str(assignment).strip() if assignment not in (None, "") else None
                if assignment is not None and assignments and item is not None:
                    if assignment not in assignments:
                        row_problems.append(Problem(p, line, "assignment", f"unknown assignment {assignment!r}"))
                    elif str(item).strip() not in assignments[assignment]:
                        row_problems.append(Problem(p, line, "item", f"item {str(item).strip()!r} is not part of assignment {assignment!r}"))
                scores: dict[str, float] = {}
                for s in scales:
                    raw = flat.get(s.name)
                    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
                        if s.kind == "binary":
                            scores[s.name] = 0.0  # an unticked checkbox exports as empty
                            continue
                        row_problems.append(Problem(p, line, s.name, "missing rating"))
                        continue
                    try:
                        scores[s.name] = s.parse(raw)
                    except ValueError as e:
                        row_problems.append(Problem(p, line, s.name, str(e)))
                if not row_problems:
                    rk = (str(rater).strip(), str(item).strip())
                    if rk in seen:
                        fp, fl = seen[rk]
                        where = f"line {fl}" if fp == p else f"{fp}:{fl}"
                        row_problems.append(Problem(p, line, itf, f"rater {rk[0]!r} already rated item {rk[1]!r} at {where}"))
                    else:
                        seen[rk] = (p, line)
                        out.append(Rating(p, line, rk[0], rk[1], assignment, scores))
                problems += row_problems
        except InputError as e:  # byte-level problems (encoding, empty file)
            problems += e.problems
    if problems:
        raise InputError(problems)
    if not out:
        raise InputError.at(", ".join(str(p) for p in paths), None, None, "no ratings found")
    return out


def attention_report(ratings: list[Rating], key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per rater: attention items seen, passed, failed (with what was answered)."""
    rep: dict[str, dict[str, Any]] = {}
    for r in ratings:
        info = key["items"][r.item]
        if not info.get("attention"):
            continue
        d = rep.setdefault(r.rater, {"checks": 0, "passed": 0, "failed": []})
        d["checks"] += 1
        ok = all(lo <= r.scores.get(m, math.nan) <= hi for m, (lo, hi) in info["expect"].items())
        if ok:
            d["passed"] += 1
        else:
            d["failed"].append({"item": r.item, "line": f"{r.path}:{r.line}", "answered": r.scores, "rule": info.get("rule")})
    return rep


def _sd(v: list[float]) -> float | None:
    return float(np.std(v, ddof=1)) if len(v) > 1 else None


def aggregate(ratings: list[Rating], key: dict[str, Any], exclude: set[str]) -> dict[str, Any]:
    """Unblinded rows, per-item means (an item's score = the mean of its raters), per-source
    summaries, and inter-rater agreement per scale."""
    from kyokan.stats.agreement import icc_auto, krippendorff_alpha

    scales = [Scale.from_dict(s) for s in key["scales"]]
    rows: list[dict[str, Any]] = []
    per_item: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(dict)
    for r in ratings:
        info = key["items"][r.item]
        if info.get("attention") or r.rater in exclude:
            continue
        rows.append({"kind": "kyokan.human.rating", "version": 1, "rater": r.rater, "item": r.item,
                     "id": info["sample_id"], "source": info["source"],
                     "emotion": info.get("emotion"), "assignment": r.assignment, "scores": r.scores})
        per_item[(info["source"], info["sample_id"])][r.rater] = r.scores
    emotions = {(i["source"], i["sample_id"]): i.get("emotion") for i in key["items"].values() if not i.get("attention")}
    items_out = []
    by_source: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (src, sid), raters in sorted(per_item.items()):
        means = {s.name: float(np.mean([sc[s.name] for sc in raters.values()])) for s in scales}
        sds = {s.name: _sd([sc[s.name] for sc in raters.values()]) for s in scales}
        items_out.append({"kind": "kyokan.human.item", "version": 1, "id": sid, "source": src, "emotion": emotions.get((src, sid)), "n_raters": len(raters), "means": means, "sd": sds})
        for s in scales:
            by_source[src][s.name].append(means[s.name])
    summary: dict[str, Any] = {}
    for src, mets in sorted(by_source.items()):
        summary[src] = {m: {"mean": float(np.mean(v)), "sd": _sd(v), "n": len(v)} for m, v in mets.items()}
    agreement: dict[str, Any] = {}
    rater_ids = sorted({r["rater"] for r in rows})
    units = sorted(per_item)
    for s in scales:
        mat = np.full((len(rater_ids), len(units)), np.nan)
        ri = {r: i for i, r in enumerate(rater_ids)}
        unit_ratings: dict[str, dict[str, float]] = {}
        for u, (uk, rs) in enumerate(sorted(per_item.items())):
            unit_ratings[f"{uk[0]}\t{uk[1]}"] = {rt: sc[s.name] for rt, sc in rs.items()}
            for rt, sc in rs.items():
                mat[ri[rt], u] = sc[s.name]
        levels = ("nominal",) if s.kind == "binary" else ("ordinal", "interval")
        agreement[s.name] = {f"krippendorff_alpha_{lv}": krippendorff_alpha(mat, lv) for lv in levels}
        agreement[s.name]["icc"] = [r.to_dict() for r in icc_auto(unit_ratings)] if s.kind != "binary" else []
    return {"rows": rows, "per_item": items_out, "per_source": summary, "agreement": agreement,
            "raters": len(rater_ids), "items": len(items_out)}
