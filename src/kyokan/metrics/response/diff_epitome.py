"""DIFF-EPITOME: squared level differences of generated vs reference replies (ER/EX/IP)."""

from __future__ import annotations

from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)


@register_metric
class DiffEpitomeMetric(ResponseMetric):
    name = "diff_epitome"
    definition = ("for m in ER/EX/IP: (level_m(context, generated) - level_m(context, reference))^2 with trained "
                  "EPITOME classifiers (levels 0-2); mean = average of the three")

    def available(self, ctx: MetricContext) -> str | None:
        if not ctx.options.get("epitome"):
            return "no --epitome classifiers given"
        return None

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        from kyokan.metrics.epitome import EpitomeClassifiers, diff_epitome

        clfs = EpitomeClassifiers(str(ctx.options["epitome"]))
        scored = [ex for ex in examples if ex.reference is not None]
        ctxs = [ex.context for ex in scored]
        gen = clfs.levels(ctxs, [ex.response for ex in scored])
        ref = clfs.levels(ctxs, [ex.reference or "" for ex in scored])
        vals = diff_epitome(gen, ref) if scored else []
        by_id = {ex.id: v for ex, v in zip(scored, vals, strict=True)}
        empty: dict[str, float | int | None] = {k: None for k in ("diff_er", "diff_ex", "diff_ip", "mean")}
        rows = [by_id.get(ex.id, empty) for ex in examples]
        return MetricOutput(rows, aggregate=["mean", "diff_er", "diff_ex", "diff_ip"], provenance=clfs.info())
