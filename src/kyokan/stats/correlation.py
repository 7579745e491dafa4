"""Correlation and difference measures between paired scores: Pearson (p-value, Fisher-z CI),
Spearman, mean absolute difference, signed mean difference, exact agreement.

The statistics are computed with numpy; only the reference distributions (t, normal) come from
scipy; ``tests/test_stats_scipy.py`` checks every value against ``scipy.stats``. Missing values
and undefined results follow :mod:`kyokan.stats.base`: incomplete pairs are dropped, and a
correlation with fewer than 3 pairs or a constant side is ``None`` with a ``reason``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kyokan.stats.base import (
    MIN_CORRELATION_N,
    Alternative,
    Values,
    check_alternative,
    complete_pairs,
    has_variance,
    t_pvalue,
)


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient with its p-value and (Pearson) a Fisher-z confidence interval.

    ``statistic``/``pvalue`` are None when the correlation is undefined; ``reason`` says why."""

    method: str
    statistic: float | None
    pvalue: float | None
    n: int
    alternative: str = "two-sided"
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def undefined_reason(a: np.ndarray, b: np.ndarray) -> str | None:
    """Why a correlation of the complete pairs (a, b) is undefined, or None when it is defined."""
    if a.size < MIN_CORRELATION_N:
        return f"fewer than {MIN_CORRELATION_N} complete pairs (n={a.size})"
    constant = [name for name, v in (("x", a), ("y", b)) if not has_variance(v)]
    if len(constant) == 2:
        return "x and y have no variance"
    if constant:
        v = a if constant == ["x"] else b
        return f"{constant[0]} has no variance (every value is {float(v[0]):g})"
    return None


def _r_pvalue(r: float, n: int, alternative: str) -> float:
    if abs(r) >= 1.0:
        if alternative == "two-sided":
            return 0.0
        return 0.0 if (r > 0) == (alternative == "greater") else 1.0
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    return t_pvalue(t, n - 2, alternative)


def _r(a: np.ndarray, b: np.ndarray) -> float:
    am, bm = a - a.mean(), b - b.mean()
    r = float(np.dot(am / np.linalg.norm(am), bm / np.linalg.norm(bm)))
    return max(-1.0, min(1.0, r))


def pearson(x: Values, y: Values, *, alternative: Alternative = "two-sided",
            confidence: float = 0.95) -> CorrelationResult:
    """Pearson's r over the complete pairs, its p-value (t distribution, n − 2 df) and a Fisher-z
    confidence interval (one-sided for one-sided alternatives, as scipy's
    ``PearsonRResult.confidence_interval``; needs n > 3).

    Undefined (None, with ``reason``) for fewer than 3 pairs or a constant side — e.g. a judge
    that gives every dialogue 5 (EmplifAI Table 5 then reports the MAD instead)."""
    from scipy.stats import norm

    check_alternative(alternative)
    a, b = complete_pairs(x, y)
    n = a.size
    reason = undefined_reason(a, b)
    if reason:
        return CorrelationResult("pearson", None, None, n, alternative, reason=reason)
    r = _r(a, b)
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


def spearman(x: Values, y: Values, *, alternative: Alternative = "two-sided") -> CorrelationResult:
    """Spearman's ρ (Pearson on average ranks of the complete pairs) with the t-distribution
    p-value scipy uses. Undefined under the same rule as :func:`pearson`."""
    check_alternative(alternative)
    a, b = complete_pairs(x, y)
    reason = undefined_reason(a, b)
    if reason:
        return CorrelationResult("spearman", None, None, a.size, alternative, reason=reason)
    rho = _r(rank_average(a), rank_average(b))
    return CorrelationResult("spearman", rho, _r_pvalue(rho, a.size, alternative), a.size, alternative)


def mean_absolute_difference(x: Values, y: Values) -> float | None:
    """MAD between paired scores: mean over complete pairs of |x_i − y_i| (EmplifAI Table 5);
    None without a complete pair."""
    a, b = complete_pairs(x, y)
    return float(np.mean(np.abs(a - b))) if a.size else None


def mean_difference(x: Values, y: Values) -> float | None:
    """Signed mean of x_i − y_i over complete pairs (positive: x scores higher); None without a pair."""
    a, b = complete_pairs(x, y)
    return float(np.mean(a - b)) if a.size else None


def exact_agreement(x: Values, y: Values) -> float | None:
    """Share of complete pairs with x_i == y_i; None without a pair."""
    a, b = complete_pairs(x, y)
    return float(np.mean(a == b)) if a.size else None
