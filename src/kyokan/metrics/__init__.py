"""Automatic evaluation: taxonomy validity (labels), response metrics (BERTScore, NIDF, IVA,
response tries, length, DIFF-EPITOME) and general-capability retention. The metric spec is
docs/metrics.md; heavy libraries load inside the functions that need them."""

from kyokan.metrics.bertscore import DEFAULT_LAYER, BertScorer, BertScoreResult
from kyokan.metrics.labels import (
    classification_report,
    normalize_prediction,
    read_predictions,
    score_labels,
)
from kyokan.metrics.nidf import CountTable, build_table
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    available_metrics,
    get_metric,
    register_metric,
)
from kyokan.metrics.responses import evaluate_responses
from kyokan.metrics.tries import TrieStats, response_tries

__all__ = [
    "DEFAULT_LAYER",
    "BertScoreResult",
    "BertScorer",
    "CountTable",
    "Example",
    "MetricContext",
    "MetricOutput",
    "ResponseMetric",
    "TrieStats",
    "available_metrics",
    "build_table",
    "classification_report",
    "evaluate_responses",
    "get_metric",
    "normalize_prediction",
    "read_predictions",
    "register_metric",
    "response_tries",
    "score_labels",
]
