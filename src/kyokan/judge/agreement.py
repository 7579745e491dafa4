"""Small, exact statistics for judge outputs (numpy only): Pearson and Spearman correlation, mean
absolute difference, exact agreement, and Krippendorff's alpha (interval) over judges × items with
missing values. Checked against the ``krippendorff`` package and scipy in the tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _clean(x: Sequence[float | None], y: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    if not pairs:
        return np.array([]), np.array([])
    a, b = zip(*pairs, strict=True)
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def pearson(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    """Pearson's r over the pairs where both are present; None when undefined (n < 3 or a
    constant side — e.g. a judge that gives every dialogue 5, as in EmplifAI Table 5)."""
    a, b = _clean(x, y)
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v), dtype=float)
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    a, b = _clean(x, y)
    if len(a) < 3:
        return None
    return pearson(list(ranks(a)), list(ranks(b)))


def mad(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    """Mean absolute difference (EmplifAI Table 5's MAD)."""
    a, b = _clean(x, y)
    return float(np.mean(np.abs(a - b))) if len(a) else None


def exact_agreement(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    a, b = _clean(x, y)
    return float(np.mean(a == b)) if len(a) else None


def krippendorff_alpha_interval(data: Sequence[Sequence[float | None]]) -> float | None:
    """Krippendorff's alpha with the interval distance; ``data[coder][item]``, None = missing.
    Items with fewer than two values are not pairable and are dropped. None when undefined (fewer
    than two pairable values, or no variation at all)."""
    if not data:
        return None
    n_items = len(data[0])
    units: list[np.ndarray] = []
    for i in range(n_items):
        vals = [row[i] for row in data if row[i] is not None and not (isinstance(row[i], float) and math.isnan(row[i]))]  # type: ignore[arg-type]
        if len(vals) >= 2:
            units.append(np.asarray(vals, dtype=float))
    n = sum(len(u) for u in units)
    if n < 2:
        return None
    d_o = 0.0
    for u in units:
        diff = u[:, None] - u[None, :]
        d_o += float(np.sum(diff ** 2)) / (len(u) - 1)
    d_o /= n
    allv = np.concatenate(units)
    diff = allv[:, None] - allv[None, :]
    d_e = float(np.sum(diff ** 2)) / (n * (n - 1))
    if d_e == 0:
        return None
    return 1.0 - d_o / d_e
