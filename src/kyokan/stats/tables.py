"""Paper-shaped analyses: judge vs human per metric (EmplifAI Table 5) and one-sided pairwise
comparisons between systems with Cohen's d and a multiple-comparison correction (EmPO Table 7)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kyokan.stats.correlation import (
    has_variance,
    mean_absolute_difference,
    mean_difference,
    pearson,
    spearman,
)
from kyokan.stats.multiple import adjust
from kyokan.stats.resampling import permutation_test
from kyokan.stats.significance import TestResult, mcnemar, paired_t, student_t, welch_t
from kyokan.tables import Table, fmt_num, fmt_p

Scores = Mapping[str, Mapping[str, float | None]]  # item key -> metric -> score


def _pairs(a: Scores, b: Scores, metric: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    keys = sorted(k for k in a.keys() & b.keys()
                  if a[k].get(metric) is not None and b[k].get(metric) is not None)
    return keys, np.array([float(a[k][metric]) for k in keys]), np.array([float(b[k][metric]) for k in keys])  # type: ignore[arg-type]


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
              caption="Top: mean score per metric. Bottom: Pearson correlation (p-value) between judge and "
                      "human scores per item, or the mean absolute difference (MAD) where one side has no "
                      "variance and a correlation cannot be computed.")
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
        if has_variance(j) and has_variance(h) and len(keys) >= 3:
            c = pearson(j, h, confidence=confidence)
            s = spearman(j, h)
            row.update(method="pearson", pearson=c.to_dict(), spearman=s.to_dict())
            pr.append(f"{c.statistic:.3f} (p={fmt_p(c.pvalue)})")
            md.append("–")
            ci = f"[{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ci_low is not None else "–"
            detail.add(labels.get(m, m), len(keys), row["judge_mean"], row["human_mean"], "Pearson",
                       f"{c.statistic:.3f}", fmt_p(c.pvalue), ci, f"{s.statistic:.3f}", fmt_p(s.pvalue),
                       f"{row['mad']:.3f}", f"{row['mean_diff']:+.3f}")
        else:
            reasons = [x for x in (_constant_note(judge_name, j), _constant_note(human_name, h)) if x]
            reason = "; ".join(reasons) if reasons else "fewer than 3 paired items"
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

TESTS: dict[str, Callable[..., TestResult]] = {
    "welch": welch_t,
    "student": student_t,
    "paired": paired_t,
    "permutation": lambda a, b, alternative, seed=0: permutation_test(a, b, alternative=alternative, seed=seed),
    "permutation-paired": lambda a, b, alternative, seed=0: permutation_test(a, b, paired=True, alternative=alternative, seed=seed),
    "mcnemar": lambda a, b, alternative="two-sided": _mcnemar(a, b),
}
PAIRED_TESTS = {"paired", "permutation-paired", "mcnemar"}


def _mcnemar(a: np.ndarray, b: np.ndarray) -> TestResult:
    from dataclasses import replace

    r = mcnemar(a, b)
    return replace(r, effect_size=float(np.mean(a) - np.mean(b)), effect_name="difference in proportions (two-sided exact test)")

#: EmPO Table 7's markers: * p < 0.00001, † p < 0.001, ‡ p < 0.05
MARKERS: tuple[tuple[float, str], ...] = ((0.00001, "*"), (0.001, "†"), (0.05, "‡"))


def marker(p: float) -> str:
    if p is None or math.isnan(p):
        return ""
    for thr, sym in MARKERS:
        if p < thr:
            return sym
    return ""


def source_means(groups: Mapping[str, Scores], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for s, items in groups.items():
        out[s] = {}
        for m in metrics:
            vals = [float(v[m]) for v in items.values() if v.get(m) is not None]  # type: ignore[arg-type]
            out[s][m] = float(np.mean(vals)) if vals else math.nan
    return out


def pairwise_compare(groups: Mapping[str, Scores], metrics: Sequence[str], *, test: str = "welch",
                     alternative: str = "greater", correction: str = "bonferroni", order: Sequence[str] | None = None,
                     markers_on: str = "corrected", labels: Mapping[str, str] | None = None, seed: int = 0,
                     ) -> tuple[Table, Table, list[dict[str, Any]]]:
    """EmPO Table 7: for every pair of sources (A, B) with A earlier in ``order``, a one-sided test
    that A is rated higher than B on each metric, with Cohen's d; p-values corrected over the whole
    family (every pair × metric) by ``correction``. Without ``order``, sources are ordered by their
    mean over all metrics, highest first. ``markers_on``: mark cells by the corrected or raw p."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose from {sorted(TESTS)}")
    labels = labels or {}
    means = source_means(groups, metrics)
    if order is None:
        order = sorted(groups, key=lambda s: (-np.nanmean([means[s][m] for m in metrics]), s))
    missing = [s for s in order if s not in groups]
    if missing:
        raise ValueError(f"unknown sources in order: {missing}; known: {sorted(groups)}")
    results: list[dict[str, Any]] = []
    for a, b in itertools.combinations(order, 2):
        for m in metrics:
            row: dict[str, Any] = {"a": a, "b": b, "metric": m}
            if test in PAIRED_TESTS:
                _, x, y = _pairs(groups[a], groups[b], m)
            else:
                x = np.array([float(v[m]) for v in groups[a].values() if v.get(m) is not None])  # type: ignore[arg-type]
                y = np.array([float(v[m]) for v in groups[b].values() if v.get(m) is not None])  # type: ignore[arg-type]
            try:
                if test.startswith("permutation"):
                    res = TESTS[test](x, y, alternative=alternative, seed=seed)
                else:
                    res = TESTS[test](x, y, alternative=alternative)
                row.update(res.to_dict())
            except ValueError as e:
                row.update(test=test, statistic=math.nan, pvalue=math.nan, effect_size=math.nan, error=str(e),
                           n_a=int(x.size), n_b=int(y.size))
            results.append(row)
    ok = [i for i, r in enumerate(results) if not math.isnan(r["pvalue"])]
    adj = adjust([results[i]["pvalue"] for i in ok], correction) if ok else []
    for r in results:
        r["p_adjusted"] = math.nan
        r["correction"] = correction
    for i, p in zip(ok, adj, strict=True):
        results[i]["p_adjusted"] = p
    alt_word = {"greater": "higher than", "less": "lower than", "two-sided": "different from"}[alternative]
    cols = [labels.get(m, m) for m in metrics]
    t = Table("empo_table7", "Pairwise comparison of output sources (Cohen's d)",
              ["Output source", f"{'Greater' if alternative == 'greater' else 'Compared'} score than", *cols],
              caption=f"{_TEST_NAMES[test]}, one-sided hypothesis that the left source is rated {alt_word} the right"
                      if alternative != "two-sided" else f"{_TEST_NAMES[test]}, two-sided")
    by = {(r["a"], r["b"], r["metric"]): r for r in results}
    for a, b in itertools.combinations(order, 2):
        cells = []
        for m in metrics:
            r = by[(a, b, m)]
            p = r["p_adjusted"] if markers_on == "corrected" else r["pvalue"]
            d = r.get("effect_size")
            cells.append("–" if d is None or (isinstance(d, float) and math.isnan(d)) else f"{d:.2f}{marker(p)}")
        t.add(labels.get(a, a), labels.get(b, b), *cells)
    basis = f"{correction}-corrected p over all {len(ok)} tests" if markers_on == "corrected" and correction != "none" else "uncorrected p"
    t.notes.append(f"* p < 0.00001, † p < 0.001, ‡ p < 0.05 ({basis}).")
    eff = next((r.get("effect_name") for r in results if r.get("effect_name")), None)
    if eff:
        t.notes.append(f"Effect size: {eff}.")
    detail = Table("empo_table7_detail", "Pairwise comparisons: every statistic",
                   ["A", "B", "Metric", "n A", "n B", "mean A", "mean B", "statistic", "df", "p", f"p ({correction})", "d"])
    for r in results:
        detail.add(labels.get(r["a"], r["a"]), labels.get(r["b"], r["b"]), labels.get(r["metric"], r["metric"]),
                   r.get("n_a") or 0, r.get("n_b") or 0, fmt_num(r.get("mean_a"), 3), fmt_num(r.get("mean_b"), 3),
                   fmt_num(r.get("statistic"), 3), fmt_num(r.get("df"), 1), fmt_p(r["pvalue"]), fmt_p(r["p_adjusted"]),
                   fmt_num(r.get("effect_size"), 3))
    return t, detail, results


_TEST_NAMES = {"welch": "Welch's t-test", "student": "Student's t-test", "paired": "paired t-test",
               "permutation": "permutation test (difference of means)",
               "permutation-paired": "paired permutation test (sign flips)",
               "mcnemar": "McNemar's exact test (paired binary outcomes)"}
