"""Human ratings: unblinded rows (``ratings.jsonl``), per-item means (``per_item.jsonl``) and the
import summary (``summary.json``) of ``kyokan human import``."""

from __future__ import annotations

from typing import Any, Literal

from kyokan.records.base import Part, Record, register


@register
class Rating(Record):
    KIND = "kyokan.human.rating"
    VERSION = 1
    DESCRIPTION = "one rater's ratings of one item, unblinded (source and dialogue id)"

    kind: Literal["kyokan.human.rating"] = "kyokan.human.rating"
    version: Literal[1] = 1
    rater: str
    #: the opaque packet code, or the item's own id for ratings imported without a key
    item: str
    id: str
    source: str
    emotion: str | None = None
    assignment: str | None = None
    scores: dict[str, float]


@register
class ItemMeans(Record):
    KIND = "kyokan.human.item"
    VERSION = 1
    DESCRIPTION = "one rated item: the mean (and SD) of its raters per scale"

    kind: Literal["kyokan.human.item"] = "kyokan.human.item"
    version: Literal[1] = 1
    id: str
    source: str
    emotion: str | None = None
    n_raters: int
    means: dict[str, float | None]
    sd: dict[str, float | None] = {}


class ScaleInfo(Part):
    name: str
    en: str
    ja: str = ""
    kind: Literal["likert", "slider", "binary"]
    low: float
    high: float


class SourceScaleSummary(Part):
    mean: float | None
    sd: float | None
    n: int


@register
class HumanSummary(Record):
    KIND = "kyokan.human.summary"
    VERSION = 1
    DESCRIPTION = "imported human ratings: scales, per-source means, inter-rater agreement, attention checks"

    kind: Literal["kyokan.human.summary"] = "kyokan.human.summary"
    version: Literal[1] = 1
    style: str | None = None
    scales: list[ScaleInfo]
    ratings: int
    raters: int
    items: int
    per_source: dict[str, dict[str, SourceScaleSummary]]
    agreement: dict[str, Any] = {}
    attention: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
