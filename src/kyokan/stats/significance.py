"""Significance tests between systems: Welch, Student and paired t-tests, McNemar, and the two
Cohen's d effect sizes.

Statistics are computed with numpy; reference distributions come from scipy. One-sided
alternatives follow scipy's convention: ``greater`` is the alternative hypothesis
mean(a) > mean(b). Missing values and undefined results follow :mod:`kyokan.stats.base` (a test
the data do not define has ``statistic``/``pvalue`` None and a ``reason``; scipy returns ±inf or
NaN there).

Effect sizes (both reported for paired data, because papers differ — EmPO Table 7 used a paired
t-test with the pooled-SD d):

- ``d_pooled`` = (mean_a − mean_b) / s_pooled, s_pooled = sqrt(((n_a−1)s_a² + (n_b−1)s_b²) /
  (n_a+n_b−2)), sample variances (ddof 1);
- ``d_z`` = mean(a_i − b_i) / SD(a_i − b_i) (ddof 1), paired data only; the paired t is d_z·√n.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kyokan.stats.base import (
    Alternative,
    Values,
    check_alternative,
    complete_pairs,
    drop_missing,
    t_pvalue,
)

D_POOLED = "Cohen's d (pooled SD)"
D_Z = "Cohen's d_z (mean difference / SD of differences)"


@dataclass(frozen=True)
class TestResult:
    """One test between samples a and b.

    ``effect_size``/``effect_name``: the effect size that matches the test (d_z for paired tests,
    pooled d for independent ones, the difference in proportions for McNemar); ``d_pooled`` and
    ``d_z`` are both given where they apply. ``mean_diff``: mean of a − b (paired: of the
    differences). Resampling tests fill ``n_resamples``, ``exact``, ``seed`` and ``min_pvalue``
    (the smallest p the test could have produced). ``reason`` says why a value is None."""

    __test__ = False  # not a pytest test class

    test: str
    statistic: float | None
    pvalue: float | None
    alternative: str
    df: float | None = None
    n_a: int | None = None
    n_b: int | None = None
    mean_a: float | None = None
    mean_b: float | None = None
    mean_diff: float | None = None
    sd_diff: float | None = None
    effect_size: float | None = None
    effect_name: str | None = None
    d_pooled: float | None = None
    d_z: float | None = None
    n_resamples: int | None = None
    exact: bool | None = None
    seed: int | None = None
    min_pvalue: float | None = None
    reason: str | None = None
    extra: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d.get("extra") is None:
            d.pop("extra", None)
        return d


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def cohens_d(a: Values, b: Values) -> float | None:
    """Cohen's d with the pooled SD (see the module doc); None with fewer than 2 values in a group
    or a pooled SD of 0."""
    x, y = drop_missing(a, "a"), drop_missing(b, "b")
    na, nb = x.size, y.size
    if na < 2 or nb < 2:
        return None
    pooled = math.sqrt(((na - 1) * float(np.var(x, ddof=1)) + (nb - 1) * float(np.var(y, ddof=1))) / (na + nb - 2))
    return (float(x.mean()) - float(y.mean())) / pooled if pooled > 0 else None


def cohens_dz(a: Values, b: Values) -> float | None:
    """Cohen's d_z of paired samples: mean(a−b) / SD(a−b) over complete pairs; None with fewer than
    2 pairs or differences that are all equal."""
    x, y = complete_pairs(a, b)
    d = x - y
    if d.size < 2:
        return None
    sd = float(np.std(d, ddof=1))
    return float(d.mean()) / sd if sd > 0 else None


def welch_t(a: Values, b: Values, *, alternative: Alternative = "two-sided") -> TestResult:
    """Welch's unequal-variance t-test (scipy ``ttest_ind(equal_var=False)``), with the pooled d."""
    check_alternative(alternative)
    x, y = drop_missing(a, "a"), drop_missing(b, "b")
    na, nb = x.size, y.size
    base: dict[str, Any] = {"n_a": na, "n_b": nb, "mean_a": _mean(x), "mean_b": _mean(y),
            "effect_name": D_POOLED}
    if na < 2 or nb < 2:
        return TestResult("welch_t", None, None, alternative, **base, reason="fewer than 2 values in a group")
    va, vb = float(np.var(x, ddof=1)) / na, float(np.var(y, ddof=1)) / nb
    diff = float(x.mean() - y.mean())
    d = cohens_d(x, y)
    if va + vb == 0:
        return TestResult("welch_t", None, None, alternative, mean_diff=diff, **base, reason="neither group has any variance")
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    return TestResult("welch_t", t, t_pvalue(t, df, alternative), alternative, df, mean_diff=diff,
                      effect_size=d, d_pooled=d, **base)


def student_t(a: Values, b: Values, *, alternative: Alternative = "two-sided") -> TestResult:
    """Student's equal-variance t-test (scipy ``ttest_ind``), with the pooled d."""
    check_alternative(alternative)
    x, y = drop_missing(a, "a"), drop_missing(b, "b")
    na, nb = x.size, y.size
    base: dict[str, Any] = {"n_a": na, "n_b": nb, "mean_a": _mean(x), "mean_b": _mean(y), "effect_name": D_POOLED}
    if na < 2 or nb < 2:
        return TestResult("student_t", None, None, alternative, **base, reason="fewer than 2 values in a group")
    df = na + nb - 2
    sp2 = ((na - 1) * float(np.var(x, ddof=1)) + (nb - 1) * float(np.var(y, ddof=1))) / df
    diff = float(x.mean() - y.mean())
    if sp2 == 0:
        return TestResult("student_t", None, None, alternative, float(df), mean_diff=diff, **base,
                          reason="neither group has any variance")
    t = diff / math.sqrt(sp2 * (1 / na + 1 / nb))
    d = cohens_d(x, y)
    return TestResult("student_t", t, t_pvalue(t, df, alternative), alternative, float(df), mean_diff=diff,
                      effect_size=d, d_pooled=d, **base)


def paired_t(a: Values, b: Values, *, alternative: Alternative = "two-sided") -> TestResult:
    """Paired t-test on the complete pairs' differences a_i − b_i (scipy ``ttest_rel``), with both
    d_z (``effect_size``) and the pooled d."""
    check_alternative(alternative)
    x, y = complete_pairs(a, b)
    n = x.size
    base: dict[str, Any] = {"n_a": n, "n_b": n, "mean_a": _mean(x), "mean_b": _mean(y), "effect_name": D_Z}
    if n < 2:
        return TestResult("paired_t", None, None, alternative, **base, reason="fewer than 2 complete pairs")
    d = x - y
    sd = float(np.std(d, ddof=1))
    md = float(d.mean())
    dp = cohens_d(x, y)
    if sd == 0:
        return TestResult("paired_t", None, None, alternative, float(n - 1), mean_diff=md, sd_diff=0.0, d_pooled=dp,
                          **base, reason="the paired differences are all equal (no variance)")
    t = md / (sd / math.sqrt(n))
    dz = md / sd
    return TestResult("paired_t", t, t_pvalue(t, n - 1, alternative), alternative, float(n - 1), mean_diff=md,
                      sd_diff=sd, effect_size=dz, d_pooled=dp, d_z=dz, **base)


def mcnemar(a: Values, b: Values, *, alternative: Alternative = "two-sided", exact: bool = True,
            correction: bool = True) -> TestResult:
    """McNemar's test for paired binary outcomes (e.g. per-question correctness of two models).

    n10 = #(a=1, b=0), n01 = #(a=0, b=1), m = n10 + n01. Exact (default): under H0 n10 ~
    Binomial(m, 1/2); the statistic reported is n10 and the p-value that of scipy's
    ``binomtest(n10, m, 0.5, alternative)`` — ``greater``: a succeeds more often than b,
    P(X ≥ n10); ``less``: P(X ≤ n10); two-sided: min(1, 2·P(X ≤ min(n10, n01))). With no discordant
    pair p = 1. ``exact=False``: the chi-square statistic (|n10 − n01| − 1)² / m (without the −1
    when ``correction=False``), 1 df — two-sided only: a one-sided alternative raises
    ``ValueError`` (use the exact test). ``effect_size``: the difference in proportions."""
    from scipy.stats import binom, chi2

    check_alternative(alternative)
    if not exact and alternative != "two-sided":
        raise ValueError("the chi-square McNemar test is two-sided only; use the exact (binomial) test for a "
                         "one-sided alternative")
    x, y = complete_pairs(a, b)
    if not set(np.unique(np.concatenate([x, y]))) <= {0.0, 1.0}:
        raise ValueError("McNemar's test needs binary (0/1) outcomes")
    n10 = int(np.sum((x == 1) & (y == 0)))
    n01 = int(np.sum((x == 0) & (y == 1)))
    m = n10 + n01
    extra = {"a_only": n10, "b_only": n01, "both": int(np.sum((x == 1) & (y == 1))),
             "neither": int(np.sum((x == 0) & (y == 0))), "discordant": m}
    base: dict[str, Any] = {"n_a": x.size, "n_b": y.size, "mean_a": _mean(x), "mean_b": _mean(y),
                            "effect_name": "difference in proportions (a − b)", "extra": extra}
    if x.size:
        base["mean_diff"] = base["effect_size"] = float(x.mean() - y.mean())
    if exact:
        if m == 0:
            p = 1.0
        elif alternative == "greater":
            p = float(binom.sf(n10 - 1, m, 0.5))
        elif alternative == "less":
            p = float(binom.cdf(n10, m, 0.5))
        else:
            p = float(min(1.0, 2 * binom.cdf(min(n10, n01), m, 0.5)))
        return TestResult("mcnemar_exact", float(n10), p, alternative, **base)
    if m == 0:
        return TestResult("mcnemar_chi2", 0.0, 1.0, alternative, 1.0, **base)
    stat = (max(0.0, abs(n10 - n01) - (1.0 if correction else 0.0))) ** 2 / m
    return TestResult("mcnemar_chi2", stat, float(chi2.sf(stat, 1)), alternative, 1.0, **base)
