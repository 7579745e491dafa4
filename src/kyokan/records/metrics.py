"""Automatic-metric outputs: per-example rows and summaries of ``eval responses``, ``eval
labels``/``eval emotions`` and ``eval general``."""

from __future__ import annotations

from typing import Any, Literal

from kyokan.records.base import Part, Record, register


class MeanCI(Part):
    """A system mean over examples with a seeded percentile-bootstrap interval; ``n`` values used,
    ``missing`` examples without a value (never averaged as 0)."""

    mean: float | None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int
    missing: int = 0


class License(Part):
    name: str
    license: str
    url: str | None = None


class MetricSummary(Part):
    definition: str
    #: the metric profile (e.g. ``kyokan``, ``lee2024``) when the metric has several
    profile: str | None = None
    #: per-example fields aggregated over examples
    means: dict[str, MeanCI] = {}
    #: system-level numbers (e.g. response-tries statistics, token coverage)
    values: dict[str, float | int | None] = {}
    #: system-level facts that are not numbers (tables used, settings, coverage per dimension)
    info: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    seconds: float | None = None


class ResponseInputs(Part):
    generated: str
    reference: str | None = None
    examples: int
    reference_dialogues: int = 0
    reference_unmatched: int = 0
    generated_rows: int
    excluded_format_violations: int = 0
    #: replies cut at max_new_tokens, and how many of them were left out (``--truncated exclude``)
    truncated: int = 0
    excluded_truncated: int = 0


@register
class ResponsesSummary(Record):
    KIND = "kyokan.eval.responses"
    VERSION = 2
    DESCRIPTION = "response metrics of one system: per metric its means (bootstrap CIs), system values, provenance"

    kind: Literal["kyokan.eval.responses"] = "kyokan.eval.responses"
    version: Literal[2] = 2
    #: the system whose replies were scored
    source: str
    lang: str | None
    #: metric profile of the run (``kyokan`` unless the user chose another)
    profile: str = "kyokan"
    inputs: ResponseInputs
    metrics: dict[str, MetricSummary]
    #: metric -> why it did not run
    skipped: dict[str, str] = {}
    licenses: list[License] = []
    truncated_policy: Literal["flag", "exclude"] = "flag"
    bootstrap: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    license_note: str | None = None
    seconds: float | None = None


@register
class ResponseExample(Record):
    KIND = "kyokan.eval.responses.example"
    VERSION = 1
    DESCRIPTION = "one scored reply: metric -> field -> value (null where undefined)"

    kind: Literal["kyokan.eval.responses.example"] = "kyokan.eval.responses.example"
    version: Literal[1] = 1
    id: str
    source: str
    values: dict[str, dict[str, float | int | None]] = {}
    #: why the reply was not scored (format violation, truncated with ``--truncated exclude``)
    excluded: str | None = None
    truncated: bool = False


@register
class Prediction(Record):
    KIND = "kyokan.eval.prediction"
    VERSION = 1
    DESCRIPTION = "one emotion prediction (eval emotions): gold, predicted label (null = unmatched), raw answer"

    kind: Literal["kyokan.eval.prediction"] = "kyokan.eval.prediction"
    version: Literal[1] = 1
    id: str
    gold: str | None
    predicted: str | None
    raw: str
    answer: str | None = None
    off_list: bool = False
    lang: str | None = None
    #: how the label was obtained: grammar / choices (local), response_format, free
    decoding: str | None = None
    schema_valid: bool | None = None
    #: text (the answer parsed) or probabilities (every label scored)
    scoring: str | None = None
    #: the top labels by probability, where the backend gave them
    ranking: list[dict[str, Any]] = []


@register
class LabelExample(Record):
    KIND = "kyokan.eval.labels.example"
    VERSION = 1
    DESCRIPTION = "one scored label prediction: correct, label words, BERTScore and vector cosine of the words"

    kind: Literal["kyokan.eval.labels.example"] = "kyokan.eval.labels.example"
    version: Literal[1] = 1
    id: str
    gold: str
    predicted: str | None
    raw: str | None = None
    off_list: bool = False
    correct: bool
    gold_word: str
    predicted_word: str | None = None
    bertscore: dict[str, float | None] | None = None
    vector_cosine: float | None = None


class Confusion(Part):
    rows: str = "gold"
    columns: str = "predicted"
    labels: list[str]
    matrix: list[list[int]]


class LabelBertScore(Part):
    precision: MeanCI
    recall: MeanCI
    f1: MeanCI
    distinct_pairs: int = 0
    empty_answers: int = 0
    provenance: dict[str, Any] = {}


class VectorCosine(MeanCI):
    vectors: dict[str, Any] = {}


@register
class LabelsSummary(Record):
    KIND = "kyokan.eval.labels"
    VERSION = 2
    DESCRIPTION = "emotion prediction vs gold labels: accuracy, macro-F1, confusion, label BERTScore, vector cosine"

    kind: Literal["kyokan.eval.labels"] = "kyokan.eval.labels"
    version: Literal[2] = 2
    #: the predictor (model spec) or the predictions file's name
    source: str
    taxonomy: str
    lang: str
    n: int
    accuracy: MeanCI
    off_list: int = 0
    unmatched: int = 0
    macro_f1: float | None
    macro_over: list[str] = []
    per_label: dict[str, dict[str, float | int]] = {}
    confusion: Confusion
    bertscore: LabelBertScore | None = None
    #: why BERTScore of the label words was not computed
    bertscore_skipped: str | None = None
    vector_cosine: VectorCosine | None = None
    vector_cosine_skipped: str | None = None
    bootstrap: dict[str, Any] = {}
    stand_in: bool = False
    #: how the predictions were made (eval emotions): model, decoding counts, warnings
    prediction_run: dict[str, Any] = {}
    provenance: dict[str, Any] = {}


@register
class GeneralSummary(Record):
    KIND = "kyokan.eval.general"
    VERSION = 1
    DESCRIPTION = "lm-evaluation-harness results of one model (EmPO Table 3)"

    kind: Literal["kyokan.eval.general"] = "kyokan.eval.general"
    version: Literal[1] = 1
    model: str
    model_path: str | None = None
    adapter: str | None = None
    tasks: list[str]
    results: dict[str, dict[str, Any]]
    groups: dict[str, Any] = {}
    n_samples: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    lm_eval_version: str | None = None
    configs: dict[str, Any] = {}
    seconds: float | None = None
