"""Paper-shaped analyses: judge vs human per metric (EmplifAI Table 5) and pairwise comparisons
between systems with effect sizes and a multiple-comparison correction (EmPO Table 7).

Every table's caption says what was tested: the test, the alternative and where its direction
came from, the correction and its family, the effect size in the cells, and for permutation tests
the resamples and seed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kyokan.stats.base import Alternative
from kyokan.stats.compare import EFFECTS, TESTS, Comparison, TestSpec, plan_comparisons
from kyokan.stats.correlation import mean_absolute_difference, mean_difference, pearson, spearman
from kyokan.stats.multiple import CORRECTIONS, adjust
from kyokan.stats.resampling import resamples_needed
from kyokan.stats.significance import D_POOLED, D_Z
from kyokan.tables import Table, fmt_num, fmt_p

Scores = Mapping[str, Mapping[str, float | None]]  # item key -> metric -> score


def _pairs(a: Scores, b: Scores, metric: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    keys = sorted(k for k in a.keys() & b.keys()
                  if a[k].get(metric) is not None and b[k].get(metric) is not None)
    return keys, np.array([float(a[k][metric]) for k in keys]), np.array([float(b[k][metric]) for k in keys])  # type: ignore[arg-type]


def _values(items: Scores, metric: str) -> np.ndarray:
    return np.array([float(v[metric]) for v in items.values() if v.get(metric) is not None])  # type: ignore[arg-type]


def _constant_note(name: str, x: np.ndarray) -> str:
    vals = np.unique(x)
    return f"{name} gave every item {fmt_num(float(vals[0]))}" if vals.size == 1 else ""


def judge_vs_human(judge: Scores, human: Scores, metrics: Sequence[str], *, judge_name: str = "LLM judge",
                   human_name: str = "Crowd workers", labels: Mapping[str, str] | None = None,
                   confidence: float = 0.95) -> tuple[Table, Table, list[dict[str, Any]]]:
    """EmplifAI Table 5: means of judge and humans per metric (top), then Pearson r (p) per metric
    — or, where one side has no variance so r is undefined, the mean absolute difference alone.

    Items are matched by key; only items scored by both sides count. Returns the paper-shaped
    table, a detail table (n, CI, Spearman, MAD and signed difference for every metric) and the
    raw numbers."""
    labels = labels or {}
    cols = [labels.get(m, m) for m in metrics]
    n_all = {m: len(_pairs(judge, human, m)[0]) for m in metrics}
    ns = sorted(set(n_all.values()))
    n_txt = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    t = Table("emplifai_table5", f"Judge vs human ratings (n={n_txt})", ["Judges", *cols],
              caption="Top: mean score per metric. Bottom: Pearson correlation between judge and human scores "
                      "per item with its two-sided p-value (t distribution, n − 2 df), or the mean absolute "
                      "difference (MAD) where the correlation is undefined (one side has no variance, or fewer "
                      "than 3 items are scored by both).")
    detail = Table("emplifai_table5_detail", "Judge vs human: every statistic per metric",
                   ["Metric", "n", "Judge mean", "Human mean", "Method", "Pearson r", "p", f"{int(confidence * 100)}% CI",
                    "Spearman ρ", "p (ρ)", "MAD", "Judge − human"])
    data: list[dict[str, Any]] = []
    jm, hm, pr, md = [], [], [], []
    for m in metrics:
        keys, j, h = _pairs(judge, human, m)
        row: dict[str, Any] = {"metric": m, "n": len(keys)}
        if not keys:
            row.update(method="none", reason="no item scored by both")
            data.append(row)
            jm.append("–")
            hm.append("–")
            pr.append("–")
            md.append("–")
            t.notes.append(f"{labels.get(m, m)}: no item has both a judge and a human score")
            detail.add(labels.get(m, m), 0, "–", "–", "none", "–", "–", "–", "–", "–", "–", "–")
            continue
        row.update(judge_mean=float(j.mean()), human_mean=float(h.mean()), judge_sd=float(j.std(ddof=1)) if j.size > 1 else None,
                   human_sd=float(h.std(ddof=1)) if h.size > 1 else None,
                   mad=mean_absolute_difference(j, h), mean_diff=mean_difference(j, h))
        jm.append(fmt_num(row["judge_mean"]))
        hm.append(fmt_num(row["human_mean"]))
        c = pearson(j, h, confidence=confidence)
        if c.statistic is not None and c.pvalue is not None:
            s = spearman(j, h)
            row.update(method="pearson", pearson=c.to_dict(), spearman=s.to_dict())
            pr.append(f"{c.statistic:.3f} (p={fmt_p(c.pvalue)})")
            md.append("–")
            ci = f"[{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ci_low is not None else "–"
            detail.add(labels.get(m, m), len(keys), row["judge_mean"], row["human_mean"], "Pearson",
                       f"{c.statistic:.3f}", fmt_p(c.pvalue), ci, fmt_num(s.statistic, 3), fmt_p(s.pvalue),
                       f"{row['mad']:.3f}", f"{row['mean_diff']:+.3f}")
        else:
            reasons = [x for x in (_constant_note(judge_name, j), _constant_note(human_name, h)) if x]
            reason = "; ".join(reasons) if reasons else (c.reason or "correlation undefined")
            row.update(method="mad", reason=f"correlation undefined: {reason}")
            pr.append("–")
            md.append(f"{row['mad']:.3f}")
            t.notes.append(f"{labels.get(m, m)}: MAD instead of Pearson — {reason}, so a correlation "
                           "cannot be computed.")
            detail.add(labels.get(m, m), len(keys), row["judge_mean"], row["human_mean"], "MAD", "–", "–", "–",
                       "–", "–", f"{row['mad']:.3f}", f"{row['mean_diff']:+.3f}")
        data.append(row)
    t.add(judge_name, *jm)
    t.add(human_name, *hm)
    t.add("Pearson", *pr)
    t.add("MAD", *md)
    t.notes.append("MAD = mean over items of |judge − human|, the human score of an item being the mean of its raters.")
    return t, detail, data




# --- pairwise comparisons (EmPO Table 7) ---------------------------------------------------

#: EmPO Table 7's markers: * p < 0.00001, † p < 0.001, ‡ p < 0.05
MARKERS: tuple[tuple[float, str], ...] = ((0.00001, "*"), (0.001, "†"), (0.05, "‡"))


CORRECTION_NAMES = {"bonferroni": "Bonferroni", "holm": "Holm (step-down)", "none": "no"}


def marker(p: float | None) -> str:
    if p is None or math.isnan(p):
        return ""
    for thr, sym in MARKERS:
        if p < thr:
            return sym
    return ""


def _effect_choice(spec: TestSpec, effect: str) -> tuple[str, str]:
    """(result field, description) of the effect size shown in the cells."""
    if effect not in EFFECTS:
        raise ValueError(f"unknown effect {effect!r}; choose from {', '.join(EFFECTS)}")
    if spec.binary:
        if effect != "auto":
            raise ValueError(f"{spec.title} reports the difference in proportions, not a Cohen's d; leave the effect "
                             "at auto")
        return "effect_size", "difference in proportions (left − right)"
    if effect == "dz" or (effect == "auto" and spec.paired):
        if not spec.paired:
            raise ValueError(f"d_z needs paired data; {spec.title} compares independent samples "
                             "(use a paired test or the pooled d)")
        return "d_z", D_Z
    return "d_pooled", D_POOLED


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def pairwise_compare(groups: Mapping[str, Scores], metrics: Sequence[str], *, test: str = "welch",
                     alternative: Alternative = "two-sided", order: Sequence[str] | None = None,
                     comparisons: Sequence[Comparison] | None = None, correction: str = "bonferroni",
                     effect: str = "auto", markers_on: str = "corrected", labels: Mapping[str, str] | None = None,
                     n_resamples: int = 9999, exact: bool | None = None, seed: int = 0,
                     ) -> tuple[Table, Table, list[dict[str, Any]]]:
    """EmPO Table 7: one test per comparison × metric, an effect size per cell, p-values corrected
    over the whole family (every test with a p-value) by ``correction``.

    What is compared is fixed before the data are read (:func:`~kyokan.stats.compare.plan_comparisons`):
    ``comparisons`` (explicit hypotheses, e.g. from ``parse_comparisons("dpo>sft,sft>base")``), or
    every pair of ``order`` under ``alternative`` (``greater``: ``order`` is hypothesised highest
    first), or — two-sided only — every pair of sources in ``groups``' order. A one-sided
    ``alternative`` without ``order`` raises ``ValueError``.

    ``effect``: the effect size in the cells — ``dz`` (paired tests), ``pooled``, or ``auto`` (d_z
    for paired tests, pooled d otherwise); every result has both ``d_pooled`` and (paired) ``d_z``.
    ``markers_on``: mark cells by the corrected or the raw p. ``n_resamples``/``exact``/``seed``
    go to permutation tests. Returns the paper-shaped table, a detail table and one dict per test."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose from {', '.join(TESTS)}")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; choose from {', '.join(CORRECTIONS)}")
    if markers_on not in ("corrected", "raw"):
        raise ValueError("markers_on must be 'corrected' or 'raw'")
    spec = TESTS[test]
    cell_field, cell_name = _effect_choice(spec, effect)
    plan = plan_comparisons(list(groups), alternative=alternative, order=order, comparisons=comparisons)
    labels = labels or {}
    results: list[dict[str, Any]] = []
    for comp in plan:
        for m in metrics:
            if spec.paired:
                keys, x, y = _pairs(groups[comp.a], groups[comp.b], m)
                unpaired = int(_values(groups[comp.a], m).size + _values(groups[comp.b], m).size - 2 * len(keys))
            else:
                x, y, unpaired = _values(groups[comp.a], m), _values(groups[comp.b], m), 0
            res = spec.run(x, y, alternative=comp.alternative, n_resamples=n_resamples, exact=exact, seed=seed)
            row: dict[str, Any] = {"a": comp.a, "b": comp.b, "metric": m, "hypothesis": comp.hypothesis, **res.to_dict()}
            row["effect_size"], row["effect_name"] = row.get(cell_field), cell_name
            if spec.paired:
                row["unpaired"] = unpaired
            results.append(row)
    ok = [i for i, r in enumerate(results) if r["pvalue"] is not None]
    adj = adjust([results[i]["pvalue"] for i in ok], correction) if ok else []
    for r in results:
        r.update(p_adjusted=None, correction=correction, family_size=len(ok))
    for i, p in zip(ok, adj, strict=True):
        results[i]["p_adjusted"] = p

    table = _main_table(results, plan, metrics, labels, markers_on)
    table.caption = _caption(spec, plan, metrics, correction, len(ok), cell_name, results, n_resamples, seed,
                             order, alternative, labels)
    table.notes += _notes(spec, results, correction, markers_on, len(ok))
    table.data = results
    return table, _detail_table(spec, results, labels, correction), results


def _main_table(results: list[dict[str, Any]], plan: Sequence[Comparison], metrics: Sequence[str],
                labels: Mapping[str, str], markers_on: str) -> Table:
    alts = {c.alternative for c in plan}
    cols = [labels.get(m, m) for m in metrics]
    lead = ["Output source", "Greater score than"] if alts == {"greater"} else \
        ["Output source", "Compared with"] if alts == {"two-sided"} else ["Output source", "Compared with", "H1"]
    title = "Pairwise comparison of output sources"
    t = Table("empo_table7", title, [*lead, *cols])
    by = {(r["a"], r["b"], r["metric"]): r for r in results}
    for c in plan:
        cells = []
        for m in metrics:
            r = by[(c.a, c.b, m)]
            p = r["p_adjusted"] if markers_on == "corrected" else r["pvalue"]
            d = r.get("effect_size")
            cells.append("–" if d is None else f"{d:.2f}".replace("-0.00", "0.00") + marker(p))
        head = [labels.get(c.a, c.a), labels.get(c.b, c.b)]
        if len(lead) == 3:
            head.append("left > right" if c.alternative == "greater" else "left ≠ right")
        t.add(*head, *cells)
    return t


def _caption(spec: TestSpec, plan: Sequence[Comparison], metrics: Sequence[str], correction: str, family: int,
             cell_name: str, results: list[dict[str, Any]], n_resamples: int, seed: int,
             order: Sequence[str] | None, alternative: str, labels: Mapping[str, str]) -> str:
    def name(s: str) -> str:
        return labels.get(s, s)

    parts = [f"{spec.title[0].upper()}{spec.title[1:]} per metric"
             + (" on the items both sources scored (matched by id)" if spec.paired else "") + "."]
    alts = {c.alternative for c in plan}
    if alts == {"two-sided"}:
        parts.append("Two-sided: H1 = the two sources' means differ.")
    else:
        if order is not None:
            how = f"the hypothesised order {(' < ' if alternative == 'less' else ' > ').join(map(name, order))}"
        else:
            how = "explicit hypotheses (" + "; ".join(
                f"{name(c.a)} {'>' if c.alternative == 'greater' else '≠'} {name(c.b)}" for c in plan) + ")"
        one = "One-sided: H1 = the left source is rated higher than the right" if alts == {"greater"} else \
            "One-sided where H1 is 'left > right', two-sided where it is 'left ≠ right'"
        parts.append(f"{one}; the direction was fixed before looking at the data by {how}.")
    if correction == "none":
        parts.append(f"No multiple-comparison correction ({_plural(family, 'test')}).")
    else:
        corr = CORRECTION_NAMES.get(correction, correction)
        parts.append(f"{corr} correction over the family of {_plural(family, 'test')} "
                     f"({_plural(len(plan), 'comparison')} × {_plural(len(metrics), 'metric')}).")
    parts.append(f"Cells: {cell_name}, left − right.")
    if spec.resampling:
        exact = [r for r in results if r.get("exact")]
        sampled = [r for r in results if r.get("exact") is False]
        if sampled:
            mp = min(r["min_pvalue"] for r in sampled)
            parts.append(f"{n_resamples:,} random rearrangements per test (numpy PCG64, seed {seed}); the smallest "
                         f"attainable p is {mp:.3e}.")
        if exact:
            parts.append(f"{'All' if not sampled else str(len(exact))} tests exact: every rearrangement enumerated.")
    return " ".join(parts)


def _notes(spec: TestSpec, results: list[dict[str, Any]], correction: str, markers_on: str, family: int) -> list[str]:
    corrected = markers_on == "corrected" and correction != "none"
    basis = f"{CORRECTION_NAMES.get(correction, correction)}-corrected p over all {family} tests" if corrected \
        else "uncorrected p"
    notes = [f"* p < 0.00001, † p < 0.001, ‡ p < 0.05 ({basis})."]
    if spec.resampling:
        floor = [r for r in results if r.get("min_pvalue") is not None]
        for thr, sym in MARKERS:
            reach = [min(1.0, r["min_pvalue"] * (family if corrected else 1)) < thr for r in floor]
            if floor and not all(reach):
                sampled = [r for r in floor if not r.get("exact")]
                need = max(resamples_needed(thr, r["alternative"], family if corrected else 1) for r in sampled) \
                    if sampled else None
                more = f"; that needs at least {need:,} resamples (--resamples)" if need else ""
                notes.append(f"{sym} (p < {thr:g}) cannot be reached by {'any cell' if not any(reach) else 'some cells'} "
                             f"with these resamples{' after the correction' if corrected and family > 1 else ''}{more}.")
    undefined = [r for r in results if r["pvalue"] is None]
    if undefined:
        why = sorted({str(r.get("reason")) for r in undefined})
        notes.append(f"{len(undefined)} test(s) undefined and left out of the family: {'; '.join(why)}.")
    unpaired = sum(r.get("unpaired", 0) for r in results)
    if unpaired:
        notes.append(f"Paired test: {unpaired} item score(s) without a partner in the other source were left out.")
    return notes


def _detail_table(spec: TestSpec, results: list[dict[str, Any]], labels: Mapping[str, str], correction: str) -> Table:
    eff_cols = ["Δ proportion"] if spec.binary else ["d (pooled SD)", "d_z"]
    extra_cols = ["resamples", "min p"] if spec.resampling else []
    detail = Table("empo_table7_detail", "Pairwise comparisons: every statistic",
                   ["A", "B", "H1", "Metric", "n A", "n B", "mean A", "mean B", "statistic", "df", "p",
                    f"p ({correction})", *eff_cols, *extra_cols])
    for r in results:
        effs = [fmt_num(r.get("effect_size"), 3)] if spec.binary else \
            [fmt_num(r.get("d_pooled"), 3), fmt_num(r.get("d_z"), 3)]
        extra = [("exact" if r.get("exact") else fmt_num(r.get("n_resamples"))), fmt_p(r.get("min_pvalue"))] \
            if spec.resampling else []
        detail.add(labels.get(r["a"], r["a"]), labels.get(r["b"], r["b"]),
                   ">" if r["alternative"] == "greater" else "≠", labels.get(r["metric"], r["metric"]),
                   r.get("n_a") or 0, r.get("n_b") or 0, fmt_num(r.get("mean_a"), 3), fmt_num(r.get("mean_b"), 3),
                   fmt_num(r.get("statistic"), 3), fmt_num(r.get("df"), 1), fmt_p(r["pvalue"]),
                   fmt_p(r["p_adjusted"]), *effs, *extra)
    return detail
