"""Response length in characters (Unicode code points, after the profile's normalisation: NFC for
``kyokan``, none for ``lee2024`` — Python ``len`` of the text as read) and tokens (the profile's)."""

from __future__ import annotations

import unicodedata

from kyokan.metrics.profiles import get_profile
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)


def char_length(text: str, normalization: str | None) -> int:
    return len(unicodedata.normalize(normalization, text) if normalization else text)  # type: ignore[arg-type]


@register_metric
class Length(ResponseMetric):
    name = "length"
    definition = ("chars = code points of the response (whitespace included) after the profile's normalisation; "
                  "tokens = the profile's tokens")

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        prof = get_profile(ctx.profile)
        rows: list[dict[str, float | int | None]] = []
        for ex in examples:
            rows.append({"chars": char_length(ex.response, prof.length_normalization),
                         "tokens": len(prof.tokens(ex.response, ex.lang))})
        return MetricOutput(rows, system={"normalization": prof.length_normalization, "tokenizer": prof.tokenizer})
