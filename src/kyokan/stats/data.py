"""Read per-item scores for the statistics: JSONL or CSV rows → {source: {item: {metric: value}}}.

One reader for every stage's per-item file: the judge's rows (``scores`` dict, ``status``),
human ratings aggregated per item (``means``), the metrics' ``per_example.jsonl`` (flat numbers)
and any CSV with a source column. Unscored judge rows are skipped (a parse failure is never a
score); a ``null`` score is a missing value.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, Problem

SCORE_KEYS = ("scores", "means", "metrics", "values")
SKIP_STATUS = {"unscored"}
NON_METRIC = {"id", "item", "sample_id", "source", "source_model", "model", "rater", "n", "n_raters", "line", "status",
              "seed", "response_chars", "emotion", "lang"}


def source_of(row: dict[str, Any], field: str | None = None) -> str | None:
    """The system that produced an item: ``field`` if given (dotted path), else ``source``,
    ``source_model`` (the judge's rows), ``meta.generation.model``, ``model``, ``meta.source``."""
    paths = [field] if field else ["source", "source_model", "meta.generation.model", "model", "meta.source"]
    for p in paths:
        cur: Any = row
        for part in p.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, dict):
            cur = cur.get("model") or cur.get("name")
        if cur not in (None, ""):
            return str(cur)
    return None


def numeric_fields(row: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in SCORE_KEYS:
        v = row.get(k)
        if isinstance(v, dict):
            for m, x in v.items():
                out[str(m)] = _num(x)
    for k, v in row.items():
        if k in NON_METRIC or k in SCORE_KEYS or k in out:
            continue
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, int | float):
            out[k] = _num(v)
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float):
        return None if isinstance(x, float) and math.isnan(x) else float(x)
    if isinstance(x, str):
        s = x.strip()
        if s == "" or s.lower() in ("na", "nan", "null", "none"):
            return None
        try:
            return float(s)
        except ValueError:
            return None
    return None


def iter_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, row) from JSONL or CSV; malformed lines raise one InputError listing them all."""
    p = Path(path)
    if not p.exists():
        raise InputError.at(str(p), None, None, "file not found")
    problems: list[Problem] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    if p.suffix.lower() in (".csv", ".tsv"):
        with open(p, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
            for row in reader:
                rows.append((reader.line_num, {k.strip(): v for k, v in row.items() if k is not None}))
    else:
        from kyokan.io import iter_json_objects

        for n, obj, problem in iter_json_objects(p):
            if problem is not None:
                problems.append(problem)
            elif obj is not None:
                rows.append((n, obj))
    if problems:
        raise InputError(problems)
    yield from rows


def load_scores(path: str | Path, *, source_field: str | None = None, id_field: str = "id",
                metrics: Sequence[str] | None = None, default_source: str | None = None,
                ) -> dict[str, dict[str, dict[str, float | None]]]:
    """{source: {item id: {metric: value}}} from a per-item file (see module doc)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    problems: list[Problem] = []
    for n, row in iter_rows(path):
        if str(row.get("status", "")) in SKIP_STATUS:
            continue
        src = source_of(row, source_field) or default_source
        if src is None:
            problems.append(Problem(str(path), n, source_field or "source",
                                    "no source model (set source, meta.generation.model, or pass --source-field)"))
            continue
        item = row.get(id_field, row.get("sample_id", row.get("item")))
        if item in (None, ""):
            problems.append(Problem(str(path), n, id_field, "missing item id"))
            continue
        vals = numeric_fields(row)
        if metrics is not None:
            vals = {m: vals.get(m) for m in metrics}
        key = str(item)
        if key in out.setdefault(src, {}):
            problems.append(Problem(str(path), n, id_field, f"item {key!r} of source {src!r} appears twice"))
            continue
        out[src][key] = vals
    if problems:
        raise InputError(problems)
    return out


def metric_names(groups: dict[str, dict[str, dict[str, float | None]]]) -> list[str]:
    """Metrics present (with at least one value) in every source, in first-seen order."""
    seen: list[str] = []
    for items in groups.values():
        for vals in items.values():
            for m, v in vals.items():
                if v is not None and m not in seen:
                    seen.append(m)
    return [m for m in seen if all(any(v.get(m) is not None for v in items.values()) for items in groups.values())]
