"""Correlation and difference measures: Pearson (p-value, Fisher-z CI), Spearman, mean absolute difference.

The statistics are computed here with numpy; only the reference distributions (t, normal) come
from scipy. ``tests/test_stats_*.py`` checks every value against ``scipy.stats``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient with its p-value and (for Pearson) a Fisher-z confidence interval."""

    method: str
    statistic: float
    pvalue: float
    n: int
    alternative: str = "two-sided"
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_array(x: Sequence[float] | np.ndarray, name: str = "x") -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    return a


def _paired(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_array(x, "x"), as_array(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y differ in length ({a.size} vs {b.size})")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("x and y must not contain NaN (drop incomplete pairs first)")
    return a, b


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")


def t_pvalue(t: float, df: float, alternative: str) -> float:
    """p-value of a t statistic with ``df`` degrees of freedom."""
    from scipy.stats import t as t_dist

    _check_alternative(alternative)
    if math.isnan(t):
        return math.nan
    if alternative == "greater":
        return float(t_dist.sf(t, df))
    if alternative == "less":
        return float(t_dist.cdf(t, df))
    return float(min(1.0, 2 * t_dist.sf(abs(t), df)))


def has_variance(x: Sequence[float] | np.ndarray) -> bool:
    """False when every value is the same (a correlation with it is undefined)."""
    a = as_array(x)
    return a.size > 1 and bool(np.ptp(a) > 0)


def _r_pvalue(r: float, n: int, alternative: str) -> float:
    if n < 3:
        return math.nan
    if abs(r) >= 1.0:
        if alternative == "two-sided":
            return 0.0
        return 0.0 if (r > 0) == (alternative == "greater") else 1.0
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    return t_pvalue(t, n - 2, alternative)


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *,
            alternative: Alternative = "two-sided", confidence: float = 0.95) -> CorrelationResult:
    """Pearson's r, its p-value (t distribution, n − 2 df) and a Fisher-z confidence interval
    (one-sided for one-sided alternatives, as scipy's ``confidence_interval``).

    Raises ``ValueError`` when either side has no variance: use :func:`mean_absolute_difference`."""
    from scipy.stats import norm

    _check_alternative(alternative)
    a, b = _paired(x, y)
    n = a.size
    if n < 2:
        raise ValueError("Pearson's r needs at least 2 pairs")
    if not has_variance(a) or not has_variance(b):
        raise ValueError("Pearson's r is undefined when one side has no variance")
    am, bm = a - a.mean(), b - b.mean()
    r = float(np.dot(am / np.linalg.norm(am), bm / np.linalg.norm(bm)))
    r = max(-1.0, min(1.0, r))
    p = _r_pvalue(r, n, alternative)
    lo = hi = None
    if n > 3:
        z, se = math.atanh(r) if abs(r) < 1 else math.copysign(math.inf, r), 1.0 / math.sqrt(n - 3)
        if alternative == "two-sided":
            q = float(norm.ppf(0.5 + confidence / 2))
            lo, hi = math.tanh(z - q * se), math.tanh(z + q * se)
        elif alternative == "greater":
            lo, hi = math.tanh(z - float(norm.ppf(confidence)) * se), 1.0
        else:
            lo, hi = -1.0, math.tanh(z + float(norm.ppf(confidence)) * se)
    return CorrelationResult("pearson", r, p, n, alternative, lo, hi, confidence if lo is not None else None)


def rank_average(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(x.size, dtype=float)
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *,
             alternative: Alternative = "two-sided") -> CorrelationResult:
    """Spearman's ρ (Pearson on average ranks) with the t-distribution p-value scipy uses."""
    _check_alternative(alternative)
    a, b = _paired(x, y)
    if not has_variance(a) or not has_variance(b):
        raise ValueError("Spearman's rho is undefined when one side has no variance")
    ra, rb = rank_average(a), rank_average(b)
    am, bm = ra - ra.mean(), rb - rb.mean()
    rho = float(np.dot(am, bm) / math.sqrt(float(np.dot(am, am)) * float(np.dot(bm, bm))))
    rho = max(-1.0, min(1.0, rho))
    return CorrelationResult("spearman", rho, _r_pvalue(rho, a.size, alternative), a.size, alternative)


def mean_absolute_difference(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """MAD between paired scores: mean over items of |x_i − y_i| (EmplifAI Table 5)."""
    a, b = _paired(x, y)
    if a.size == 0:
        raise ValueError("no pairs")
    return float(np.mean(np.abs(a - b)))


def mean_difference(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Signed mean of x_i − y_i (positive: x scores higher)."""
    a, b = _paired(x, y)
    return float(np.mean(a - b))
