"""Per-item scores for the statistics, read from kyokan's typed records — no field guessing.

The record kind a file declares decides how it is read (``kyokan.records``):

- ``kyokan.eval.responses.example`` (``eval responses``' ``per_example.jsonl``): source, id, one
  metric per ``<metric>.<field>`` (e.g. ``iva.intensity_abs``, ``nidf.nidf``); rows left out of
  the metrics (``excluded``) are left out here too;
- ``kyokan.human.item`` (``human import``'s ``per_item.jsonl``): source, id, each scale's mean;
- ``kyokan.judge.row`` (the judge's rows): ``source_model``, ``dialogue_id``, each rubric metric;
  unscored rows are left out (a parse failure is never a score); a ``null`` score is missing;
- a CSV/TSV score table from another tool: columns ``source``, ``id`` and one numeric column per
  metric (``source_field``/``id_field`` name other columns). Every other column must be numeric or
  empty — a text column is an error naming it, not a silently dropped metric.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, Problem

#: {source: {item id: {metric: value}}}
ScoreGroups = dict[str, dict[str, dict[str, float | None]]]

#: the record kinds ``load_scores`` reads (and CSV score tables)
ACCEPTED = ("kyokan.eval.responses.example", "kyokan.human.item", "kyokan.judge.row")


@dataclass
class ScoreFile:
    path: str
    #: the record kind read, or ``csv`` for a score table
    kind: str
    groups: ScoreGroups

    @property
    def sources(self) -> list[str]:
        return sorted(self.groups)


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None if x is None else float(x)
    if isinstance(x, int | float):
        return None if isinstance(x, float) and math.isnan(x) else float(x)
    return None


def _add(out: ScoreGroups, problems: list[Problem], path: str, line: int | None, src: str, item: str,
         vals: dict[str, float | None], what: str) -> None:
    if item in out.setdefault(src, {}):
        problems.append(Problem(path, line, what, f"item {item!r} of source {src!r} appears twice"))
        return
    out[src][item] = vals


def _from_records(p: Path, kind: str) -> ScoreGroups:
    from kyokan.records import ItemMeans, JudgedRow, ResponseExample, read_rows

    out: ScoreGroups = {}
    problems: list[Problem] = []
    if kind == "kyokan.eval.responses.example":
        for r in read_rows(p, ResponseExample):
            if r.excluded is None:
                vals = {f"{m}.{k}": _num(v) for m, fields in r.values.items() for k, v in fields.items()}
                _add(out, problems, str(p), r._line, r.source, r.id, vals, "id")
    elif kind == "kyokan.human.item":
        for h in read_rows(p, ItemMeans):
            _add(out, problems, str(p), h._line, h.source, h.id, {k: _num(v) for k, v in h.means.items()}, "id")
    else:
        for j in read_rows(p, JudgedRow):
            if j.scored:
                _add(out, problems, str(p), j._line, j.source_model, j.dialogue_id,
                     {k: _num(v) for k, v in j.scores.items()}, "dialogue_id")
    if problems:
        raise InputError(problems)
    return out


def _from_csv(p: Path, source_field: str, id_field: str) -> ScoreGroups:
    out: ScoreGroups = {}
    problems: list[Problem] = []
    with open(p, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
        cols = [c.strip() for c in reader.fieldnames or []]
        for need in (source_field, id_field):
            if need not in cols:
                raise InputError.at(str(p), 1, need, f"no such column (columns: {', '.join(cols)}); name the columns "
                                                     "with --source-field / --id-field")
        start = reader.line_num
        for row in reader:
            line = start + 1
            start = reader.line_num
            row = {(k or "").strip(): v for k, v in row.items()}
            src, item = (row.get(source_field) or "").strip(), (row.get(id_field) or "").strip()
            if not src or not item:
                problems.append(Problem(str(p), line, source_field if not src else id_field, "empty"))
                continue
            vals: dict[str, float | None] = {}
            for k, v in row.items():
                if k in (source_field, id_field):
                    continue
                s = (v or "").strip()
                if s == "" or s.lower() in ("na", "nan", "null", "none"):
                    vals[k] = None
                    continue
                try:
                    vals[k] = float(s)
                except ValueError:
                    problems.append(Problem(str(p), line, k, f"not a number: {s[:40]!r}"))
            _add(out, problems, str(p), line, src, item, vals, id_field)
    if problems:
        raise InputError(problems[:50], len(problems))
    return out


def load_scores(path: str | Path, *, source_field: str | None = None, id_field: str | None = None,
                metrics: Sequence[str] | None = None) -> ScoreFile:
    """The per-item scores of one file (see the module doc for the accepted kinds)."""
    from kyokan.records import declared_kind

    p = Path(path)
    if not p.is_file():
        raise InputError.at(str(p), None, None, "file not found")
    if p.suffix.lower() in (".csv", ".tsv"):
        kind = "csv"
        groups = _from_csv(p, source_field or "source", id_field or "id")
    else:
        if source_field or id_field:
            raise InputError.at(str(p), None, "--source-field", "only for CSV/TSV score tables: kyokan records name "
                                                               "their source and item themselves")
        kind = declared_kind(p) or ""
        if kind not in ACCEPTED:
            what = f"holds {kind} records" if kind else "declares no record kind"
            raise InputError.at(str(p), 1, "kind", f"{what}; stats read {', '.join(ACCEPTED)} or a CSV score table")
        groups = _from_records(p, kind)
    if metrics is not None:
        groups = {s: {k: {m: v.get(m) for m in metrics} for k, v in items.items()} for s, items in groups.items()}
    if not groups:
        raise InputError.at(str(p), None, None, "no scored items")
    return ScoreFile(str(p), kind, groups)


def metric_names(groups: ScoreGroups) -> list[str]:
    """Metrics present (with at least one value) in every source, in first-seen order."""
    seen: list[str] = []
    for items in groups.values():
        for vals in items.values():
            for m, v in vals.items():
                if v is not None and m not in seen:
                    seen.append(m)
    return [m for m in seen if all(any(v.get(m) is not None for v in items.values()) for items in groups.values())]
