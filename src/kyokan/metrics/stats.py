"""System means with seeded percentile-bootstrap 95% confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0


def bootstrap_mean(values: Sequence[float | None], *, seed: int = DEFAULT_SEED,
                   resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95) -> dict[str, Any]:
    """``mean`` of the non-missing values with a percentile bootstrap interval: ``resamples``
    resamples of the examples with replacement (numpy PCG64 seeded with ``seed``), the
    (1-confidence)/2 and (1+confidence)/2 quantiles (numpy's linear interpolation) of the
    resampled means. ``n`` counts the values used, ``missing`` those left out (None/NaN)."""
    arr = np.array([v for v in values if v is not None and not _isnan(v)], dtype=np.float64)
    missing = len(values) - len(arr)
    out: dict[str, Any] = {"mean": None, "ci_low": None, "ci_high": None, "std": None, "n": len(arr),
                           "missing": int(missing)}
    if len(arr) == 0:
        return out
    out["mean"] = float(arr.mean())
    out["std"] = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = rng.integers(0, len(arr), size=(resamples, len(arr)))
    means = arr[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    out["ci_low"], out["ci_high"] = float(lo), float(hi)
    return out


def _isnan(v: float) -> bool:
    try:
        return bool(np.isnan(v))
    except TypeError:
        return False
