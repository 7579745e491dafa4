"""Dialogue records: the model, readers and writers, validation, statistics, samples and splits."""

from kyokan.data.api import (
    load_dialogues,
    read_dialogues,
    read_records,
    write_dialogues,
    write_hf,
    write_jsonl,
    write_parquet,
)
from kyokan.data.readers import FORMATS, RawRecord, detect_format, read_raw
from kyokan.data.record import FIELDS, ROLES, SCHEMA_VERSION, Dialogue, Turn
from kyokan.data.samples import sample_path
from kyokan.data.sampling import assign_splits, sample_pairs
from kyokan.data.stats import compute_stats, normalized_entropy
from kyokan.data.validate import check_record, check_stream, iter_checked, validate_path

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
