"""Find what a run directory holds. Each reader is small and tolerant: a stage that is missing,
or a file in a shape this version does not know, becomes a note in the report — never a crash.

Layout (written by the pipeline): ``RUN/<stage>/…`` with stage folders such as ``generate/``,
``judge/``, ``eval_responses/``, ``eval_emotions/``, ``human/``, ``general/``, each with a
``provenance.json``. Stage folders may hold one sub-folder per model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: stage → what it is, in report order
STAGES: dict[str, str] = {
    "generate": "generated dialogues",
    "judge": "LLM-as-a-judge scores",
    "eval_responses": "automatic response metrics (BERTScore, NIDF, IVA, tries, length)",
    "eval_emotions": "emotion prediction / taxonomy validity",
    "human": "human ratings",
    "general": "general language understanding (lm-eval)",
}


@dataclass
class MetricsOutput:
    """One metrics folder: its summary, per-example rows and the label of what it measured."""

    label: str
    folder: Path
    summary: dict[str, Any]
    per_example: list[dict[str, Any]]


@dataclass
class RunData:
    root: Path
    stages: dict[str, Path | None] = field(default_factory=dict)
    judge_rows: list[dict[str, Any]] = field(default_factory=list)
    judge_files: list[Path] = field(default_factory=list)
    judge_summary: dict[str, Any] | None = None
    responses: list[MetricsOutput] = field(default_factory=list)
    emotions: list[MetricsOutput] = field(default_factory=list)
    human_dir: Path | None = None
    human_summary: dict[str, Any] | None = None
    human_items: list[dict[str, Any]] = field(default_factory=list)
    dialogues: list[dict[str, Any]] = field(default_factory=list)
    general: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    provenance: dict[str, list[tuple[Path, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_json(path: Path, problems: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problems.append(f"{path}: unreadable JSON ({e}); skipped")
        return None


def read_jsonl(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    rows = []
    bad = 0
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    bad += 1
                    continue
                if isinstance(obj, dict):
                    rows.append(obj)
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{path}: unreadable ({e}); skipped")
    if bad:
        problems.append(f"{path}: {bad} malformed line(s) skipped")
    return rows


def stage_dir(root: Path, stage: str) -> Path | None:
    exact = root / stage
    if exact.is_dir():
        return exact
    cands = sorted(p for p in root.glob(f"{stage}*") if p.is_dir())
    return cands[0] if cands else None


def _label(folder: Path, stage_root: Path, summary: dict[str, Any]) -> str:
    for k in ("source", "model", "label", "name"):
        v = summary.get(k)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, dict) and isinstance(v.get("model") or v.get("name"), str):
            return str(v.get("model") or v.get("name"))
    rel = folder.relative_to(stage_root)
    return str(rel) if str(rel) != "." else stage_root.name


def read_metrics(stage_root: Path, problems: list[str]) -> list[MetricsOutput]:
    out = []
    for s in sorted(stage_root.rglob("summary.json")):
        summary = read_json(s, problems)
        if not isinstance(summary, dict):
            continue
        pe = s.parent / "per_example.jsonl"
        rows = read_jsonl(pe, problems) if pe.exists() else []
        out.append(MetricsOutput(_label(s.parent, stage_root, summary), s.parent, summary, rows))
    return out


def _is_judge_row(row: dict[str, Any]) -> bool:
    return "id" in row and isinstance(row.get("scores"), dict) and "status" in row


def read_judge(stage_root: Path, run: RunData) -> None:
    for f in sorted(stage_root.rglob("*.jsonl")):
        rows = read_jsonl(f, run.problems)
        if rows and _is_judge_row(rows[0]):
            run.judge_rows += [r for r in rows if _is_judge_row(r)]
            run.judge_files.append(f)
    for f in sorted(stage_root.rglob("*summary*.json")):
        obj = read_json(f, run.problems)
        if isinstance(obj, dict):
            run.judge_summary = obj
            break


def read_dialogues(stage_root: Path, problems: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted(stage_root.rglob("*.jsonl")):
        got = read_jsonl(f, problems)
        rows += [r for r in got if isinstance(r.get("turns"), list)]
    return rows


def discover(root: str | Path) -> RunData:
    from kyokan.errors import KyokanError

    r = Path(root)
    if not r.is_dir():
        raise KyokanError(f"{r}: not a run directory")
    run = RunData(r)
    for stage in STAGES:
        d = stage_dir(r, stage)
        run.stages[stage] = d
        if d is None:
            continue
        run.provenance[stage] = [(p, read_json(p, run.problems)) for p in sorted(d.rglob("provenance.json"))]
        if stage == "judge":
            read_judge(d, run)
        elif stage == "eval_responses":
            run.responses = read_metrics(d, run.problems)
        elif stage == "eval_emotions":
            run.emotions = read_metrics(d, run.problems)
        elif stage == "human":
            pi = sorted(d.rglob("per_item.jsonl"))
            if pi:
                run.human_dir = pi[0].parent
                run.human_items = read_jsonl(pi[0], run.problems)
                sj = pi[0].parent / "summary.json"
                run.human_summary = read_json(sj, run.problems) if sj.exists() else None
        elif stage == "generate":
            run.dialogues = read_dialogues(d, run.problems)
        elif stage == "general":
            for f in sorted(d.rglob("*.json")):
                if f.name == "provenance.json":
                    continue
                obj = read_json(f, run.problems)
                if isinstance(obj, dict):
                    run.general.append((_label(f.parent, d, obj) if f.parent != d else f.stem, obj))
    return run


def flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts as dotted keys (lists are skipped)."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, bool):
                continue
            if isinstance(v, int | float):
                out[key] = float(v)
            elif isinstance(v, dict):
                out.update(flatten(v, key))
    return out
