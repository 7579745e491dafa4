"""Find what a run directory holds, as typed records (``kyokan.records``).

Layout (written by the pipeline): ``RUN/<stage>/…`` with stage folders such as ``generate/``,
``judge/``, ``eval_responses/``, ``eval_emotions/``, ``human/``, ``general/``, each with
``stage.json`` and ``provenance.json``; a stage folder may hold one sub-folder per system. A file
counts when it declares a record kind the stage writes; files of other kinds (e.g. the judge's
copy of its input) are not that stage's results and are left alone. A record file that cannot be
read (another kind, version or shape) is a problem the report shows — never a silent gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from kyokan.errors import InputError, KyokanError
from kyokan.records import (
    GeneralSummary,
    GeneratedDialogue,
    HumanSummary,
    ItemMeans,
    JudgedRow,
    JudgeSummary,
    LabelsSummary,
    Record,
    ResponseExample,
    ResponsesSummary,
    StageProvenance,
    declared_kind,
    read_record,
    read_rows,
)

R = TypeVar("R", bound=Record)

#: stage → what it is, in report order
STAGES: dict[str, str] = {
    "generate": "generated dialogues",
    "judge": "LLM-as-a-judge scores",
    "eval_responses": "automatic response metrics (BERTScore, NIDF, IVA, tries, length)",
    "eval_emotions": "emotion prediction / taxonomy validity",
    "human": "human ratings",
    "general": "general language understanding (lm-eval)",
}

#: the record kinds each stage's results are made of
STAGE_KINDS: dict[str, tuple[type[Record], ...]] = {
    "generate": (GeneratedDialogue,),
    "judge": (JudgedRow, JudgeSummary),
    "eval_responses": (ResponsesSummary, ResponseExample),
    "eval_emotions": (LabelsSummary,),
    "human": (ItemMeans, HumanSummary),
    "general": (GeneralSummary,),
}


T = TypeVar("T")


@dataclass
class Found(Generic[T]):
    """A record and the file it was read from (relative to the run directory)."""

    record: T
    file: str


@dataclass
class RunData:
    root: Path
    stages: dict[str, Path | None] = field(default_factory=dict)
    generations: list[Found[GeneratedDialogue]] = field(default_factory=list)
    judged: list[Found[JudgedRow]] = field(default_factory=list)
    judge_summaries: list[Found[JudgeSummary]] = field(default_factory=list)
    responses: list[Found[ResponsesSummary]] = field(default_factory=list)
    response_rows: list[Found[ResponseExample]] = field(default_factory=list)
    labels: list[Found[LabelsSummary]] = field(default_factory=list)
    human_items: list[Found[ItemMeans]] = field(default_factory=list)
    human_summary: Found[HumanSummary] | None = None
    general: list[Found[GeneralSummary]] = field(default_factory=list)
    provenance: dict[str, list[Found[StageProvenance]]] = field(default_factory=dict)
    #: stage → why a stage folder that exists has no results (e.g. packets but no ratings)
    empty: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.root))
        except ValueError:
            return str(p)


def stage_dir(root: Path, stage: str) -> Path | None:
    exact = root / stage
    return exact if exact.is_dir() else None


def _record_files(d: Path) -> Iterator[Path]:
    for p in sorted(d.rglob("*")):
        if p.is_file() and p.suffix in (".json", ".jsonl") and p.name not in ("stage.json", "provenance.json") \
                and not p.name.startswith("."):
            yield p


def _read_stage(run: RunData, stage: str, d: Path) -> None:
    kinds = {c.KIND: c for c in STAGE_KINDS[stage]}
    found = 0
    for f in _record_files(d):
        try:
            kind = declared_kind(f)
        except (OSError, UnicodeDecodeError) as e:
            run.problems.append(f"{run.rel(f)}: unreadable ({e})")
            continue
        if kind not in kinds:
            continue
        cls = kinds[kind]
        rel = run.rel(f)
        try:
            if f.suffix == ".json":
                recs: list[Record] = [read_record(f, cls)]
            else:
                recs = list(read_rows(f, cls))
        except InputError as e:
            run.problems.append(f"{rel}: not read — " + "; ".join(str(p) for p in e.problems[:3])
                                + (f" (and {e.total - 3} more)" if e.total > 3 else ""))
            continue
        found += 1
        for r in recs:
            _keep(run, r, rel)
    if not found:
        run.empty[stage] = _why_empty(stage, d)


def _keep(run: RunData, r: Record, rel: str) -> None:
    if isinstance(r, GeneratedDialogue):
        run.generations.append(Found(r, rel))
    elif isinstance(r, JudgedRow):
        run.judged.append(Found(r, rel))
    elif isinstance(r, JudgeSummary):
        run.judge_summaries.append(Found(r, rel))
    elif isinstance(r, ResponsesSummary):
        run.responses.append(Found(r, rel))
    elif isinstance(r, ResponseExample):
        run.response_rows.append(Found(r, rel))
    elif isinstance(r, LabelsSummary):
        run.labels.append(Found(r, rel))
    elif isinstance(r, ItemMeans):
        run.human_items.append(Found(r, rel))
    elif isinstance(r, HumanSummary):
        if run.human_summary is not None:
            run.problems.append(f"{rel}: a second human-ratings summary; the report uses {run.human_summary.file}")
        else:
            run.human_summary = Found(r, rel)
    elif isinstance(r, GeneralSummary):
        run.general.append(Found(r, rel))


def _why_empty(stage: str, d: Path) -> str:
    wanted = " or ".join(c.KIND for c in STAGE_KINDS[stage])
    if stage == "human" and (d / "packets").is_dir():
        return (f"{d.name}/ holds rating packets but no imported ratings yet "
                f"(kyokan human import FILLED --key {d.name}/survey.key.json -o {d.name})")
    return (f"{d.name}/ holds no {wanted} records (files written by kyokan < 0.2 declare no kind: run the "
            "stage again)")


def discover(root: str | Path) -> RunData:
    r = Path(root)
    if not r.is_dir():
        raise KyokanError(f"{r}: not a run directory")
    run = RunData(r)
    for stage in STAGES:
        d = stage_dir(r, stage)
        run.stages[stage] = d
        if d is None:
            continue
        prov = d / "provenance.json"
        if prov.is_file():
            try:
                run.provenance[stage] = [Found(read_record(prov, StageProvenance), run.rel(prov))]
            except InputError as e:
                run.problems.append(f"{run.rel(prov)}: not read — {e.problems[0]}")
        _read_stage(run, stage, d)
    return run


def field_value(obj: Any, path: str) -> Any:
    """The value at a dotted ``path`` of a record (attributes, then mapping keys); KeyError when
    the record has no such field — a table binding a field that does not exist is a bug."""
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                raise KeyError(path)
            cur = cur[part]
        elif hasattr(cur, part):
            cur = getattr(cur, part)
        else:
            extra = getattr(cur, "model_extra", None) or {}
            if part not in extra:
                raise KeyError(path)
            cur = extra[part]
    return cur
