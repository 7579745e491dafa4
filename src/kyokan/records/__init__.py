"""Typed, versioned records: every file a stage writes and another reads, defined once.

Writers build these models; readers load them with :func:`read_rows` (JSONL) or
:func:`read_record` (JSON), which refuse files of another kind or version with a clear message.
``kyokan schema dump`` exports their JSON Schemas for users' own tools.
"""

from kyokan.records.base import (
    REGISTRY,
    Part,
    Record,
    declared_kind,
    iter_rows,
    parse_record,
    read_record,
    read_rows,
    record_class,
    register,
    write_record,
    write_rows,
)
from kyokan.records.generation import (
    GeneratedDialogue,
    GenerationInfo,
    GenerationStatus,
    GenerationSummary,
    Turn,
)
from kyokan.records.human import HumanSummary, ItemMeans, Rating, ScaleInfo, SourceScaleSummary
from kyokan.records.judge import JudgeCell, JudgedRow, JudgeError, JudgeStatus, JudgeSummary
from kyokan.records.metrics import (
    Confusion,
    GeneralSummary,
    LabelBertScore,
    LabelExample,
    LabelsSummary,
    License,
    MeanCI,
    MetricSummary,
    Prediction,
    ResponseExample,
    ResponseInputs,
    ResponsesSummary,
    VectorCosine,
)
from kyokan.records.pipeline import ModelUse, StageProvenance, StageState
from kyokan.records.stats import CompareInput, CompareResult

__all__ = [
    "REGISTRY", "CompareInput", "CompareResult", "Confusion", "GeneralSummary", "GeneratedDialogue", "GenerationInfo",
    "GenerationStatus", "GenerationSummary", "HumanSummary", "ItemMeans", "JudgeCell", "JudgeError", "JudgeStatus", "JudgeSummary",
    "JudgedRow", "LabelBertScore", "LabelExample", "LabelsSummary", "License", "MeanCI", "MetricSummary", "ModelUse",
    "Part", "Prediction", "Rating", "Record", "ResponseExample", "ResponseInputs", "ResponsesSummary", "ScaleInfo",
    "SourceScaleSummary", "StageProvenance", "StageState", "Turn", "VectorCosine", "declared_kind", "iter_rows",
    "parse_record", "read_record", "read_rows", "record_class", "register", "write_record", "write_rows",
]
