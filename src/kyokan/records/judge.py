"""LLM-judge rows (``judged.jsonl``) and their summary (``judged.summary.json``)."""

from __future__ import annotations

from typing import Any, Literal

from kyokan.records.base import Part, Record, register

JudgeStatus = Literal["ok", "format_violation", "unscored", "partial"]


class JudgeError(Part):
    kind: str
    message: str
    attempts: int = 1
    count: int | None = None


@register
class JudgedRow(Record):
    KIND = "kyokan.judge.row"
    VERSION = 1
    DESCRIPTION = "one judged dialogue: a score per rubric metric (null = unscored), status, judge settings"

    kind: Literal["kyokan.judge.row"] = "kyokan.judge.row"
    version: Literal[1] = 1
    id: str
    #: the dialogue's own id (``id`` may be made unique per system, e.g. ``system::d-001``)
    dialogue_id: str
    status: JudgeStatus
    scores: dict[str, float | int | None]
    rationales: dict[str, str | None] = {}
    errors: dict[str, JudgeError] = {}
    #: the system that produced the dialogue (``meta.generation.model`` or ``meta.source``)
    source_model: str
    emotion: str | None = None
    lang: str | None = None
    #: characters of the generated listener turns, whitespace excluded (None: no generated reply)
    response_chars: int | None = None
    format_reason: str | None = None
    votes: dict[str, dict[str, list[int | float | None]]] | None = None
    #: probability-weighted (G-Eval style) score per metric, where the backend gave log-probs
    expected_scores: dict[str, float | None] = {}
    #: the most probable score per metric (under the same probabilities)
    argmax_scores: dict[str, int | None] = {}
    #: per metric: probabilities of 1..5 at the score token, their mass, expected and argmax
    score_probs: dict[str, dict[str, Any] | None] = {}
    #: which scoring ran for this row: probabilities, text, mixed, format_rule
    scoring: str | None = None
    #: how structure was obtained: grammar (local constrained decoding), response_format, free, none
    decoding: str | None = None
    judge: dict[str, Any]
    usage: dict[str, int] = {}

    @property
    def scored(self) -> bool:
        return self.status != "unscored"


class JudgeCell(Part):
    mean: float | None
    sd: float | None
    n: int
    unscored: int
    format_violations: int
    #: probability-weighted scores' mean, SD and count (None where no row had log-probs)
    expected_mean: float | None = None
    expected_sd: float | None = None
    expected_n: int = 0


class JudgeScoring(Part):
    mode: str
    rows: dict[str, int] = {}


class StructuredOutput(Part):
    decoding: dict[str, int] = {}
    structured_answers: int = 0
    schema_invalid: int = 0
    truncated: int = 0
    #: a server was sent a JSON schema and answered outside it (said once, with ``message``)
    ignored_by_server: bool = False
    message: str | None = None
    server_notes: list[str] = []


@register
class JudgeSummary(Record):
    KIND = "kyokan.judge.summary"
    VERSION = 1
    DESCRIPTION = "per source and metric: mean, SD, n, unscored and format-violation counts (EmplifAI Table 4)"

    kind: Literal["kyokan.judge.summary"] = "kyokan.judge.summary"
    version: Literal[1] = 1
    n_rows: int
    metrics: list[str]
    judges: list[str]
    rubric_versions: list[str] = []
    status_counts: dict[str, dict[str, int]]
    #: judged dialogues per source (every status)
    rows_by_source: dict[str, int]
    table: dict[str, dict[str, JudgeCell]]
    overall: dict[str, JudgeCell]
    length_bias: dict[str, Any] = {}
    usage: dict[str, int] = {}
    agreement: dict[str, Any] | None = None
    scoring: JudgeScoring | None = None
    structured_output: StructuredOutput | None = None
    warnings: list[str] = []
    provenance: dict[str, Any] = {}
