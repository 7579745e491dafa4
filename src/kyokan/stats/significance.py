"""Significance tests between systems: Welch and paired t-tests, Cohen's d, McNemar.

Statistics are computed with numpy; reference distributions come from scipy. One-sided
alternatives follow scipy's convention: ``greater`` tests mean(a) > mean(b).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kyokan.stats.correlation import Alternative, _check_alternative, as_array, t_pvalue


@dataclass(frozen=True)
class TestResult:
    """One test: statistic, p-value, degrees of freedom (if any) and an effect size."""

    test: str
    statistic: float
    pvalue: float
    alternative: str
    df: float | None = None
    n_a: int | None = None
    n_b: int | None = None
    mean_a: float | None = None
    mean_b: float | None = None
    effect_size: float | None = None
    effect_name: str | None = None
    extra: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d.get("extra") is None:
            d.pop("extra", None)
        return d


def _clean(x: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    a = as_array(x, name)
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    return a


def cohens_d(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, paired: bool = False) -> float:
    """Cohen's d. Independent samples: (mean_a − mean_b) / pooled SD, the pooled SD being
    sqrt(((n_a−1)s_a² + (n_b−1)s_b²) / (n_a+n_b−2)) with ddof=1 variances. Paired: d_z =
    mean(a−b) / SD(a−b). NaN when the denominator is 0."""
    x, y = _clean(a, "a"), _clean(b, "b")
    if paired:
        if x.size != y.size:
            raise ValueError("paired samples differ in length")
        d = x - y
        sd = float(np.std(d, ddof=1)) if d.size > 1 else math.nan
        return float(np.mean(d)) / sd if sd > 0 else math.nan
    na, nb = x.size, y.size
    if na < 2 or nb < 2:
        return math.nan
    pooled = math.sqrt(((na - 1) * float(np.var(x, ddof=1)) + (nb - 1) * float(np.var(y, ddof=1))) / (na + nb - 2))
    return (float(x.mean()) - float(y.mean())) / pooled if pooled > 0 else math.nan


def welch_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
            alternative: Alternative = "two-sided") -> TestResult:
    """Welch's unequal-variance t-test (scipy ``ttest_ind(equal_var=False)``), with Cohen's d (pooled SD)."""
    _check_alternative(alternative)
    x, y = _clean(a, "a"), _clean(b, "b")
    na, nb = x.size, y.size
    if na < 2 or nb < 2:
        raise ValueError("Welch's t-test needs at least 2 values per group")
    va, vb = float(np.var(x, ddof=1)) / na, float(np.var(y, ddof=1)) / nb
    diff = float(x.mean() - y.mean())
    if va + vb == 0:
        t = math.nan if diff == 0 else math.copysign(math.inf, diff)
        df = float(na + nb - 2)
    else:
        t = diff / math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    return TestResult("welch_t", t, t_pvalue(t, df, alternative), alternative, df, na, nb,
                      float(x.mean()), float(y.mean()), cohens_d(x, y), "cohens_d (pooled SD)")


def student_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
              alternative: Alternative = "two-sided") -> TestResult:
    """Student's equal-variance t-test (scipy ``ttest_ind``)."""
    _check_alternative(alternative)
    x, y = _clean(a, "a"), _clean(b, "b")
    na, nb = x.size, y.size
    if na < 2 or nb < 2:
        raise ValueError("the t-test needs at least 2 values per group")
    df = na + nb - 2
    sp2 = ((na - 1) * float(np.var(x, ddof=1)) + (nb - 1) * float(np.var(y, ddof=1))) / df
    diff = float(x.mean() - y.mean())
    se = math.sqrt(sp2 * (1 / na + 1 / nb))
    t = diff / se if se > 0 else (math.nan if diff == 0 else math.copysign(math.inf, diff))
    return TestResult("student_t", t, t_pvalue(t, df, alternative), alternative, float(df), na, nb,
                      float(x.mean()), float(y.mean()), cohens_d(x, y), "cohens_d (pooled SD)")


def paired_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
             alternative: Alternative = "two-sided") -> TestResult:
    """Paired t-test on a_i − b_i (scipy ``ttest_rel``), with Cohen's d_z."""
    _check_alternative(alternative)
    x, y = _clean(a, "a"), _clean(b, "b")
    if x.size != y.size:
        raise ValueError(f"paired samples differ in length ({x.size} vs {y.size})")
    n = x.size
    if n < 2:
        raise ValueError("the paired t-test needs at least 2 pairs")
    d = x - y
    sd = float(np.std(d, ddof=1))
    md = float(d.mean())
    t = md / (sd / math.sqrt(n)) if sd > 0 else (math.nan if md == 0 else math.copysign(math.inf, md))
    return TestResult("paired_t", t, t_pvalue(t, n - 1, alternative), alternative, float(n - 1), n, n,
                      float(x.mean()), float(y.mean()), cohens_d(x, y, paired=True), "cohens_dz (SD of differences)")


def mcnemar(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, exact: bool = True,
            correction: bool = True) -> TestResult:
    """McNemar's test for paired binary outcomes (e.g. per-question correctness of two models).

    b = #(a=1, b=0), c = #(a=0, b=1). ``exact``: two-sided binomial test of b in b+c trials at
    p=0.5 (the statistic reported is min(b, c)); otherwise the chi-square statistic
    (|b − c| − 1)² / (b + c) (without the −1 when ``correction=False``), 1 df."""
    from scipy.stats import binom, chi2

    x, y = _clean(a, "a"), _clean(b, "b")
    if x.size != y.size:
        raise ValueError("paired outcomes differ in length")
    if not set(np.unique(np.concatenate([x, y]))) <= {0.0, 1.0}:
        raise ValueError("McNemar's test needs binary (0/1) outcomes")
    n10 = int(np.sum((x == 1) & (y == 0)))
    n01 = int(np.sum((x == 0) & (y == 1)))
    m = n10 + n01
    extra = {"a_only": n10, "b_only": n01, "both": int(np.sum((x == 1) & (y == 1))),
             "neither": int(np.sum((x == 0) & (y == 0)))}
    if exact:
        k = min(n10, n01)
        p = 1.0 if m == 0 else float(min(1.0, 2 * binom.cdf(k, m, 0.5)))
        return TestResult("mcnemar_exact", float(k), p, "two-sided", None, x.size, y.size,
                          float(x.mean()), float(y.mean()), None, None, extra)
    if m == 0:
        return TestResult("mcnemar_chi2", 0.0, 1.0, "two-sided", 1.0, x.size, y.size,
                          float(x.mean()), float(y.mean()), None, None, extra)
    stat = (max(0.0, abs(n10 - n01) - (1.0 if correction else 0.0))) ** 2 / m
    return TestResult("mcnemar_chi2", stat, float(chi2.sf(stat, 1)), "two-sided", 1.0, x.size, y.size,
                      float(x.mean()), float(y.mean()), None, None, extra)
