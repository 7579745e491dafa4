"""``kyokan stats compare`` output (``compare.json``)."""

from __future__ import annotations

from typing import Any, Literal

from kyokan.records.base import Part, Record, register


class CompareInput(Part):
    path: str
    kind: str
    sources: list[str]


@register
class CompareResult(Record):
    KIND = "kyokan.stats.compare"
    VERSION = 1
    DESCRIPTION = "pairwise significance tests between systems per metric (EmPO Table 7), with what was tested"

    kind: Literal["kyokan.stats.compare"] = "kyokan.stats.compare"
    version: Literal[1] = 1
    inputs: list[CompareInput] = []
    settings: dict[str, Any] = {}
    #: the hypotheses tested, e.g. "dpo > sft" (one-sided, fixed in advance) or "a != b"
    hypotheses: list[str] = []
    tests: list[dict[str, Any]]
    caption: str = ""
    notes: list[str] = []
    provenance: dict[str, Any] = {}
