"""BERTScore of each response against its reference reply (P, R, F1; no idf, no rescaling)."""

from __future__ import annotations

from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)


@register_metric
class BertScoreMetric(ResponseMetric):
    name = "bertscore"
    definition = ("BERTScore (Zhang et al. 2019) of response vs reference: greedy cosine matching of token "
                  "embeddings of one encoder layer, no idf weighting, no baseline rescaling")

    def available(self, ctx: MetricContext) -> str | None:
        return None

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        from kyokan.metrics.bertscore import BertScorer

        scored = [ex for ex in examples if ex.reference is not None]
        if not scored:
            return MetricOutput([{"precision": None, "recall": None, "f1": None} for _ in examples],
                                system={"skipped": "no reference replies"})
        scorer = BertScorer(model=ctx.options.get("bertscore_model"), num_layers=ctx.options.get("bertscore_layer"),
                            lang=ctx.lang, batch_size=int(ctx.options.get("batch_size", 32)))
        res = scorer.score([ex.response for ex in scored], [ex.reference or "" for ex in scored])
        by_id = {ex.id: i for i, ex in enumerate(scored)}
        rows: list[dict[str, float | int | None]] = []
        for ex in examples:
            i = by_id.get(ex.id)
            if i is None or ex.reference is None:
                rows.append({"precision": None, "recall": None, "f1": None})
            else:
                rows.append({"precision": float(res.precision[i]), "recall": float(res.recall[i]),
                             "f1": float(res.f1[i])})
        return MetricOutput(rows, system={"distinct_pairs": res.distinct_pairs}, provenance=scorer.info())
