"""What every statistic here shares: the alternatives, array cleaning and the one convention for
missing values and undefined results.

**Missing values.** ``None`` or NaN in an input is a missing value and is left out: for paired
statistics (correlations, MAD, paired tests, McNemar) a pair with a missing side is dropped, for
independent samples each missing value is dropped. Results count only the values used (``n``,
``n_a``, ``n_b``).

**Undefined results.** When the data do not define a statistic — too few values (correlations:
fewer than 3 pairs; t-tests and Cohen's d: fewer than 2 values per group or 2 pairs; bootstrap:
fewer than 2 values) or no variation where the formula divides by it (a constant side of a
correlation, a zero pooled SD, paired differences that are all equal) — the value is ``None``,
never NaN and never an exception, and result objects say why in ``reason``. Malformed arguments
(unknown alternative, paired samples of different lengths, a non-binary McNemar input) raise
``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")

#: the smallest number of pairs a correlation is reported for: at n = 2 r is always ±1 and has no p-value
MIN_CORRELATION_N = 3

Values = Sequence[float | None] | np.ndarray


def check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")


def as_array(x: Values, name: str = "x") -> np.ndarray:
    """A 1-D float array; ``None`` becomes NaN (numpy's float conversion does that)."""
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    return a


def drop_missing(x: Values, name: str = "x") -> np.ndarray:
    """The non-missing values of one sample."""
    a = as_array(x, name)
    return a[~np.isnan(a)]


def complete_pairs(x: Values, y: Values) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (x_i, y_i) where neither side is missing; x and y must have the same length."""
    a, b = as_array(x, "x"), as_array(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length ({a.size} vs {b.size})")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def has_variance(x: Values) -> bool:
    """False when fewer than two values are present or every value is the same."""
    a = drop_missing(x)
    return a.size > 1 and bool(np.ptp(a) > 0)


def t_pvalue(t: float, df: float, alternative: str) -> float:
    """p-value of a finite t statistic with ``df`` degrees of freedom."""
    from scipy.stats import t as t_dist

    check_alternative(alternative)
    if alternative == "greater":
        return float(t_dist.sf(t, df))
    if alternative == "less":
        return float(t_dist.cdf(t, df))
    return float(min(1.0, 2 * t_dist.sf(abs(t), df)))


def finite_or_none(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) or math.isinf(v) else float(v)
