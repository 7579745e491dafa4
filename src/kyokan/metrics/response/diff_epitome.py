"""DIFF-EPITOME: squared level differences of generated vs reference replies (ER/EX/IP).

Levels come from, in this order: the input itself (every example carries ``epitome_levels``, e.g.
EmPO's released ``pred_*``/``gt_*`` columns), ``--epitome DIR`` with classifiers kyokan trained
(``er/ ex/ ip/``, kyokan.metrics.epitome), or EmPO's AdapterHub adapters
(``DIR/epitome_{ER,EX,IP}_level/final_adapter`` with ``--epitome-base`` naming roberta-base).
"""

from __future__ import annotations

from typing import Any

from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)

MECHANISMS = ("er", "ex", "ip")


def levels_in_input(examples: list[Example]) -> bool:
    return bool(examples) and all(isinstance(ex.meta.get("epitome_levels"), dict) for ex in examples)


@register_metric
class DiffEpitomeMetric(ResponseMetric):
    name = "diff_epitome"
    definition = ("for m in ER/EX/IP: (level_m(context, generated) - level_m(context, reference))^2, levels 0-2 "
                  "(from the input's levels or trained EPITOME classifiers); mean = average of the three")

    def available(self, ctx: MetricContext) -> str | None:
        if not ctx.options.get("epitome") and not ctx.options.get("_levels_in_input"):
            return "no --epitome classifiers given and the input carries no epitome_levels"
        return None

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        from kyokan.metrics.epitome import diff_epitome

        if levels_in_input(examples) and not ctx.options.get("epitome"):
            gen = {m: [int(ex.meta["epitome_levels"][m][0]) for ex in examples] for m in MECHANISMS}
            ref = {m: [int(ex.meta["epitome_levels"][m][1]) for ex in examples] for m in MECHANISMS}
            return MetricOutput(diff_epitome(gen, ref), aggregate=["mean", "diff_er", "diff_ex", "diff_ip"],
                                provenance={"levels": "given in the input (epitome_levels)"})
        clfs = load_classifiers(str(ctx.options["epitome"]), ctx.options.get("epitome_base"))
        scored = [ex for ex in examples if ex.reference is not None]
        ctxs = [ex.context for ex in scored]
        genl = clfs.levels(ctxs, [ex.response for ex in scored])
        refl = clfs.levels(ctxs, [ex.reference or "" for ex in scored])
        vals = diff_epitome(genl, refl) if scored else []
        by_id = {ex.id: v for ex, v in zip(scored, vals, strict=True)}
        empty: dict[str, float | int | None] = {k: None for k in ("diff_er", "diff_ex", "diff_ip", "mean")}
        rows = [by_id.get(ex.id, empty) for ex in examples]
        return MetricOutput(rows, aggregate=["mean", "diff_er", "diff_ex", "diff_ip"], provenance=clfs.info())


def load_classifiers(path: str, base: str | None = None) -> Any:
    """kyokan's trained classifiers (``er/ex/ip``) or EmPO's adapters (``epitome_*_level``)."""
    from pathlib import Path

    from kyokan.metrics.epitome import EpitomeClassifiers

    p = Path(path)
    if any((p / f"epitome_{m.upper()}_level").exists() for m in MECHANISMS) or (p / "adapter_config.json").exists():
        from kyokan.metrics.epitome_adapters import EpitomeAdapters

        return EpitomeAdapters(p, base)
    return EpitomeClassifiers(p)
