"""Dialogue records: the model, readers and writers, validation, statistics, samples and splits.

Names are loaded on first use (PEP 562), so ``import kyokan.data`` — and ``kyokan --help`` — do
not pay for numpy or pyarrow."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "load_dialogues": "api", "read_dialogues": "api", "read_records": "api", "write_dialogues": "api",
    "write_hf": "api", "write_jsonl": "api", "write_parquet": "api",
    "FORMATS": "readers", "RawRecord": "readers", "detect_format": "readers", "read_raw": "readers",
    "csv_rows": "readers",
    "FIELDS": "record", "ROLES": "record", "SCHEMA_VERSION": "record", "Dialogue": "record", "Turn": "record",
    "sample_path": "samples",
    "assign_splits": "sampling", "sample_pairs": "sampling",
    "compute_stats": "stats", "normalized_entropy": "stats",
    "check_record": "validate", "check_stream": "validate", "iter_checked": "validate", "validate_path": "validate",
}

__all__ = [
    "FIELDS",
    "FORMATS",
    "ROLES",
    "SCHEMA_VERSION",
    "Dialogue",
    "RawRecord",
    "Turn",
    "assign_splits",
    "check_record",
    "check_stream",
    "compute_stats",
    "csv_rows",
    "detect_format",
    "iter_checked",
    "load_dialogues",
    "normalized_entropy",
    "read_dialogues",
    "read_raw",
    "read_records",
    "sample_pairs",
    "sample_path",
    "validate_path",
    "write_dialogues",
    "write_hf",
    "write_jsonl",
    "write_parquet",
]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'kyokan.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kyokan.data.{mod}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from kyokan.data.api import (
        load_dialogues,
        read_dialogues,
        read_records,
        write_dialogues,
        write_hf,
        write_jsonl,
        write_parquet,
    )
    from kyokan.data.readers import FORMATS, RawRecord, csv_rows, detect_format, read_raw
    from kyokan.data.record import FIELDS, ROLES, SCHEMA_VERSION, Dialogue, Turn
    from kyokan.data.samples import sample_path
    from kyokan.data.sampling import assign_splits, sample_pairs
    from kyokan.data.stats import compute_stats, normalized_entropy
    from kyokan.data.validate import check_record, check_stream, iter_checked, validate_path
