"""Inter-rater agreement: Krippendorff's α (nominal, ordinal, interval, ratio) and the intraclass
correlation (Shrout & Fleiss 1979 forms ICC(1,1), ICC(2,1), ICC(3,1) and their k-rater means).

Which ICC to report: when every unit is rated by the *same* raters (fully crossed), ICC(2,1)
(two-way random, absolute agreement, single rater) and ICC(2,k) (the mean of k raters). When
each unit has its own raters — the usual crowdsourcing design, EmplifAI's groups rated by
different workers — only the one-way forms ICC(1,1) / ICC(1,k) are valid; :func:`icc_auto`
picks accordingly and says which it used.

Undefined values are None (see :mod:`kyokan.stats.base`): α without two pairable values or
without any variation, an ICC whose denominator is 0 or with fewer than 2 units or raters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def krippendorff_alpha(reliability: Sequence[Sequence[float | None]] | np.ndarray,
                       level: str = "interval") -> float | None:
    """Krippendorff's α from a raters × units matrix (None or NaN = not rated).

    Units with fewer than two ratings are not pairable and are ignored. Ordinal distances use
    Krippendorff's rank-sum metric over the observed values; interval (c − k)²; ratio
    ((c − k)/(c + k))²; nominal 0/1. None when fewer than two values are pairable or they do not
    vary (the expected disagreement is 0)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    r = np.asarray(reliability, dtype=float)
    if r.ndim != 2:
        raise ValueError("reliability data must be a raters × units matrix")
    values = np.unique(r[~np.isnan(r)])
    if values.size == 0:
        return None
    index = {v: i for i, v in enumerate(values)}
    v = values.size
    o = np.zeros((v, v))
    for u in range(r.shape[1]):
        col = r[:, u]
        col = col[~np.isnan(col)]
        m = col.size
        if m < 2:
            continue
        counts = np.zeros(v)
        for val in col:
            counts[index[val]] += 1
        o += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return None
    delta = _distance(values, n_c, level)
    d_o = float(np.sum(o * delta))
    d_e = float(np.sum(np.outer(n_c, n_c) * delta)) / (n - 1)
    if d_e == 0:
        return None
    return 1.0 - d_o / d_e


def _distance(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    c, k = np.meshgrid(values, values, indexing="ij")
    if level == "nominal":
        return (c != k).astype(float)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        s = c + k
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(s == 0, 0.0, ((c - k) / np.where(s == 0, 1.0, s)) ** 2)
        return d
    # ordinal: (sum_{g=c..k} n_g − (n_c + n_k)/2)²
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    i, j = np.meshgrid(np.arange(values.size), np.arange(values.size), indexing="ij")
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    between = cum[hi + 1] - cum[lo]
    return (between - (n_c[i] + n_c[j]) / 2.0) ** 2


ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")


@dataclass(frozen=True)
class ICCResult:
    form: str
    value: float | None
    n_units: int
    n_raters: int
    description: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DESCRIPTIONS = {
    "ICC(1,1)": "one-way random effects, single rater (each unit rated by its own raters)",
    "ICC(1,k)": "one-way random effects, mean of k raters (each unit rated by its own raters)",
    "ICC(2,1)": "two-way random effects, absolute agreement, single rater",
    "ICC(2,k)": "two-way random effects, absolute agreement, mean of k raters",
    "ICC(3,1)": "two-way mixed effects, consistency, single rater",
    "ICC(3,k)": "two-way mixed effects, consistency, mean of k raters",
}


def icc_all(matrix: Sequence[Sequence[float]] | np.ndarray) -> dict[str, float | None]:
    """Every Shrout–Fleiss form from a complete units × raters matrix (no NaN); every value None
    with fewer than 2 units or 2 raters."""
    y = np.asarray(matrix, dtype=float)
    if y.ndim != 2 or np.isnan(y).any():
        raise ValueError("ICC needs a complete units × raters matrix (drop units with missing ratings)")
    n, k = y.shape
    if n < 2 or k < 2:
        return dict.fromkeys(ICC_FORMS)
    grand = y.mean()
    ss_rows = k * float(np.sum((y.mean(axis=1) - grand) ** 2))
    ss_cols = n * float(np.sum((y.mean(axis=0) - grand) ** 2))
    ss_total = float(np.sum((y - grand) ** 2))
    ss_err = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))

    def div(a: float, b: float) -> float | None:
        return a / b if b != 0 else None

    return {
        "ICC(1,1)": div(msr - msw, msr + (k - 1) * msw),
        "ICC(2,1)": div(msr - mse, msr + (k - 1) * mse + k * (msc - mse) / n),
        "ICC(3,1)": div(msr - mse, msr + (k - 1) * mse),
        "ICC(1,k)": div(msr - msw, msr),
        "ICC(2,k)": div(msr - mse, msr + (msc - mse) / n),
        "ICC(3,k)": div(msr - mse, msr),
    }


def icc(matrix: Sequence[Sequence[float]] | np.ndarray, form: str = "ICC(2,1)") -> ICCResult:
    if form not in ICC_FORMS:
        raise ValueError(f"form must be one of {ICC_FORMS}")
    y = np.asarray(matrix, dtype=float)
    return ICCResult(form, icc_all(y)[form], y.shape[0], y.shape[1], _DESCRIPTIONS[form])


def icc_auto(ratings: dict[str, dict[str, float]]) -> list[ICCResult]:
    """ICC from {unit: {rater: score}}, choosing the valid forms for the design.

    Fully crossed (all units share one rater set): ICC(2,1) and ICC(2,k). Otherwise raters are
    nested in units: the one-way ICC(1,1) and ICC(1,k), using each unit's first k ratings
    (k = the smallest number of ratings any unit has, units with < 2 ratings dropped)."""
    units = {u: r for u, r in ratings.items() if len(r) >= 2}
    if len(units) < 2:
        return []
    rater_sets = {frozenset(r) for r in units.values()}
    if len(rater_sets) == 1:
        raters = sorted(next(iter(rater_sets)))
        m = np.array([[units[u][r] for r in raters] for u in sorted(units)])
        forms = ("ICC(2,1)", "ICC(2,k)")
    else:
        k = min(len(r) for r in units.values())
        m = np.array([[r[key] for key in sorted(r)[:k]] for _, r in sorted(units.items())])
        forms = ("ICC(1,1)", "ICC(1,k)")
    if m.shape[1] < 2 or not np.ptp(m) > 0:
        return []
    vals = icc_all(m)
    return [ICCResult(f.replace("k", str(m.shape[1])) if f.endswith("k)") else f, vals[f], m.shape[0], m.shape[1],
                      _DESCRIPTIONS[f]) for f in forms]
