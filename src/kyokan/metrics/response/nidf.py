"""Specificity: mean NIDF over a response's unique tokens (see kyokan.metrics.nidf); the tokens
and the score of a token missing from the table follow the metric profile."""

from __future__ import annotations

from pathlib import Path

from kyokan.errors import KyokanError
from kyokan.metrics.nidf import CountTable, build_table, score_tokens
from kyokan.metrics.profiles import get_profile
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)


@register_metric
class NidfMetric(ResponseMetric):
    name = "nidf"
    definition = ("NIDF(w) = (ln c_max - ln c_w) / (ln c_max - ln c_min), c_w = reference utterances containing w; "
                  "response score = mean over its unique tokens (a token missing from the table is left out, or "
                  "scores the profile's nidf_unknown_token); coverage = found / unique tokens")

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
        prof = get_profile(ctx.profile)
        utts = ctx.reference_corpus or []
        if prof.name == "kyokan":
            t = build_table(utts, ctx.lang, source=str(ctx.options.get("nidf_source", "reference")))
        else:
            from collections import Counter

            counts: Counter[str] = Counter()
            for u in utts:
                counts.update(set(prof.tokens(u, ctx.lang)))
            t = CountTable(dict(counts), len(utts), ctx.lang, prof.tokenizer,
                           str(ctx.options.get("nidf_source", "reference")))
        if ctx.out_dir:
            t.save(Path(ctx.out_dir) / "nidf_counts.json")
        return t

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        prof = get_profile(ctx.profile)
        table = self.table(ctx)
        rows: list[dict[str, float | int | None]] = []
        found = total = 0
        for ex in examples:
            toks = set(prof.tokens(ex.response, ex.lang))
            score, cov = score_tokens(table, toks, prof.nidf_unknown)
            found += sum(1 for w in toks if w in table.counts)
            total += len(toks)
            rows.append({"nidf": score, "coverage": cov})
        return MetricOutput(rows, aggregate=["nidf", "coverage"],
                            system={"table": table.info(), "token_coverage": found / total if total else None,
                                    "unknown_token_score": prof.nidf_unknown, "tokenizer": prof.tokenizer})
