"""Multiple-comparison corrections: Bonferroni and Holm (step-down), as adjusted p-values."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def bonferroni(pvalues: Sequence[float]) -> list[float]:
    """min(1, m·p) for each of the m p-values."""
    p = np.asarray(pvalues, dtype=float)
    return [float(v) for v in np.minimum(1.0, p * p.size)]


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values: sort ascending, p_(i)·(m − i + 1), running
    maximum, capped at 1; returned in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="mergesort")
    adj = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, float(p[idx]) * (m - rank)))
        adj[idx] = running
    return [float(v) for v in adj]


def no_correction(pvalues: Sequence[float]) -> list[float]:
    return [float(v) for v in pvalues]


CORRECTIONS: dict[str, Callable[[Sequence[float]], list[float]]] = {
    "bonferroni": bonferroni,
    "holm": holm,
    "none": no_correction,
}


def adjust(pvalues: Sequence[float], method: str) -> list[float]:
    try:
        return CORRECTIONS[method](pvalues)
    except KeyError:
        raise ValueError(f"unknown correction {method!r}; choose from {sorted(CORRECTIONS)}") from None
