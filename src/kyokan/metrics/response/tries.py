"""Diversity of a system's responses as response tries (corpus-level): the folding rules are the
metric profile's (``kyokan``: kyokan.metrics.tries; ``lee2024``: kyokan.metrics.lee_tries)."""

from __future__ import annotations

from kyokan.metrics.profiles import get_profile
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)


@register_metric
class TriesMetric(ResponseMetric):
    name = "tries"
    definition = ("fold repeated n-grams (n>=2, heaviest n*count first) into span nodes until none repeats; trie "
                  "statistics before/after; counting, ties and folding follow the profile's tries rule")

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        prof = get_profile(ctx.profile)
        st = prof.tries([ex.response for ex in examples], ctx.lang)
        return MetricOutput([{} for _ in examples], aggregate=[], system={**st, "rule": prof.tries_rule})
