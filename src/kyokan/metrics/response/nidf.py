"""Specificity: mean NIDF over a response's unique tokens (see kyokan.metrics.nidf)."""

from __future__ import annotations

from pathlib import Path

from kyokan.errors import KyokanError
from kyokan.metrics.nidf import CountTable, build_table, score_tokens
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)
from kyokan.metrics.tokenize import cached_tokens


@register_metric
class NidfMetric(ResponseMetric):
    name = "nidf"
    definition = ("NIDF(w) = (ln c_max - ln c_w) / (ln c_max - ln c_min), c_w = reference utterances containing w; "
                  "response score = mean over its unique tokens found in the table; coverage = found / unique tokens")

    def available(self, ctx: MetricContext) -> str | None:
        if not ctx.options.get("nidf_counts") and not ctx.reference_corpus:
            return "no --nidf-counts table and no reference corpus to build one"
        return None

    def table(self, ctx: MetricContext) -> CountTable:
        path = ctx.options.get("nidf_counts")
        if path:
            t = CountTable.load(path)
            if t.lang.split("-")[0] != ctx.lang.split("-")[0]:
                raise KyokanError(f"{path}: count table is for lang {t.lang!r}, responses are {ctx.lang!r}")
            return t
        t = build_table(ctx.reference_corpus or [], ctx.lang, source=str(ctx.options.get("nidf_source", "reference")))
        if ctx.out_dir:
            t.save(Path(ctx.out_dir) / "nidf_counts.json")
        return t

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        table = self.table(ctx)
        rows: list[dict[str, float | int | None]] = []
        found = total = 0
        for ex in examples:
            toks = set(cached_tokens(ex.response, ex.lang))
            score, cov = score_tokens(table, toks)
            found += sum(1 for w in toks if w in table.counts)
            total += len(toks)
            rows.append({"nidf": score, "coverage": cov})
        return MetricOutput(rows, aggregate=["nidf", "coverage"],
                            system={"table": table.info(), "token_coverage": found / total if total else None})
