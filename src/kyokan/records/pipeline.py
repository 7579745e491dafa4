"""The pipeline's own files in every stage folder: ``stage.json`` (state) and ``provenance.json``."""

from __future__ import annotations

from typing import Any, Literal

from kyokan.records.base import Part, Record, register
from kyokan.records.metrics import License


@register
class StageState(Record):
    KIND = "kyokan.stage"
    VERSION = 1
    DESCRIPTION = "a stage's state: fingerprint, status, timings and its outputs"

    kind: Literal["kyokan.stage"] = "kyokan.stage"
    version: Literal[1] = 1
    stage: str
    fingerprint: str
    status: Literal["running", "complete", "failed"]
    started: float
    seconds: float | None = None
    outputs: dict[str, Any] = {}
    error: str | None = None


class ModelUse(Part):
    """A model a stage really ran: its role (``system``, ``judge``, ``predictor``, ``trained``),
    the spec it was loaded from, an adapter, and whether it stands in for the paper's model."""

    role: str
    spec: str
    label: str | None = None
    adapter: str | None = None
    stand_in: bool = False
    info: dict[str, Any] = {}


@register
class StageProvenance(Record):
    KIND = "kyokan.stage.provenance"
    VERSION = 1
    DESCRIPTION = "what produced a stage's outputs: config section, seed, models and lexicons used, package versions"

    kind: Literal["kyokan.stage.provenance"] = "kyokan.stage.provenance"
    version: Literal[1] = 1
    stage: str
    config: dict[str, Any] | None = None
    seed: int
    lang: str | None = None
    fingerprint: str
    config_path: str | None = None
    models: list[ModelUse] = []
    #: lexicons the stage's metrics loaded, with their licenses (and the language they served)
    lexicons: list[License] = []
    packages: dict[str, str | None] = {}
    python: str | None = None
    platform: str | None = None
