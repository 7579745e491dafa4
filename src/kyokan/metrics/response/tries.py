"""Diversity of a system's responses as response tries (corpus-level; see kyokan.metrics.tries)."""

from __future__ import annotations

from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)
from kyokan.metrics.tokenize import cached_tokens
from kyokan.metrics.tries import response_tries


@register_metric
class TriesMetric(ResponseMetric):
    name = "tries"
    definition = ("fold the n-gram (n>=2) with the largest n*count (non-overlapping occurrences, count>=2; ties: longer, "
                  "then lexicographically smaller) into a span node until none repeats; trie statistics before/after")

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        st = response_tries([cached_tokens(ex.response, ex.lang) for ex in examples])
        return MetricOutput([{} for _ in examples], aggregate=[], system=st.as_dict())
