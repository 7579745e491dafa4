"""Response length in characters (Unicode code points after NFC) and tokens (kyokan.text.tokens)."""

from __future__ import annotations

import unicodedata

from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)
from kyokan.metrics.tokenize import cached_tokens


@register_metric
class Length(ResponseMetric):
    name = "length"
    definition = "chars = code points of the NFC-normalised response (whitespace included); tokens = kyokan.text.tokens(response, lang)"

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        rows: list[dict[str, float | int | None]] = []
        for ex in examples:
            rows.append({"chars": len(unicodedata.normalize("NFC", ex.response)),
                         "tokens": len(cached_tokens(ex.response, ex.lang))})
        return MetricOutput(rows)
