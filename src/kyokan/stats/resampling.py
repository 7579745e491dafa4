"""Permutation tests and bootstrap confidence intervals (seeded, exact when small).

The permutation test's statistic is the difference of means (independent samples: labels
shuffled; paired samples: signs of the differences flipped). When every rearrangement fits in
``n_resamples`` the null distribution is enumerated exactly; otherwise it is sampled and the
p-value is (count + 1) / (n_resamples + 1) — the same conventions as ``scipy.stats.permutation_test``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kyokan.stats.correlation import Alternative, _check_alternative, as_array
from kyokan.stats.significance import TestResult, cohens_d

_MAX_EXACT = 200_000


def _null_independent(x: np.ndarray, y: np.ndarray, n_resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    pooled = np.concatenate([x, y])
    n, na = pooled.size, x.size
    total = math.comb(n, na)
    if total <= min(n_resamples, _MAX_EXACT):
        s = pooled.sum()
        null = np.empty(total)
        for i, idx in enumerate(itertools.combinations(range(n), na)):
            sa = pooled[list(idx)].sum()
            null[i] = sa / na - (s - sa) / (n - na)
        return null, True
    null = np.empty(n_resamples)
    for i in range(n_resamples):
        perm = rng.permutation(pooled)
        null[i] = perm[:na].mean() - perm[na:].mean()
    return null, False


def _null_paired(d: np.ndarray, n_resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    n = d.size
    if 2 ** n <= min(n_resamples, _MAX_EXACT):
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return signs @ d / n, True
    signs = rng.choice(np.array([1.0, -1.0]), size=(n_resamples, n))
    return signs @ d / n, False


def _pvalue(null: np.ndarray, observed: float, alternative: str, exact: bool) -> float:
    adj = 0 if exact else 1
    gamma = abs(np.finfo(float).eps * 100 * observed)
    less = (np.count_nonzero(null <= observed + gamma) + adj) / (null.size + adj)
    greater = (np.count_nonzero(null >= observed - gamma) + adj) / (null.size + adj)
    if alternative == "less":
        p = less
    elif alternative == "greater":
        p = greater
    else:
        p = 2 * min(less, greater)
    return float(min(1.0, max(0.0, p)))


def permutation_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, paired: bool = False,
                     alternative: Alternative = "two-sided", n_resamples: int = 9999, seed: int = 0) -> TestResult:
    """Permutation test of mean(a) − mean(b); exact when all rearrangements fit in ``n_resamples``."""
    _check_alternative(alternative)
    x, y = as_array(a, "a"), as_array(b, "b")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("samples contain NaN")
    rng = np.random.default_rng(seed)
    if paired:
        if x.size != y.size:
            raise ValueError("paired samples differ in length")
        d = x - y
        observed = float(d.mean())
        null, exact = _null_paired(d, n_resamples, rng)
    else:
        if x.size < 1 or y.size < 1:
            raise ValueError("each sample needs at least one value")
        observed = float(x.mean() - y.mean())
        null, exact = _null_independent(x, y, n_resamples, rng)
    p = _pvalue(null, observed, alternative, exact)
    return TestResult("permutation_paired" if paired else "permutation", observed, p, alternative, None,
                      x.size, y.size, float(x.mean()), float(y.mean()), cohens_d(x, y, paired=paired),
                      "cohens_dz (SD of differences)" if paired else "cohens_d (pooled SD)",
                      {"exact": exact, "n_resamples": int(null.size), "seed": seed, "statistic": "difference of means"})


@dataclass(frozen=True)
class BootstrapCI:
    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n_resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_ci(data: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean, *,
                 confidence: float = 0.95, n_resamples: int = 9999, method: str = "bca",
                 seed: int = 0) -> BootstrapCI:
    """Two-sided bootstrap confidence interval of ``statistic`` over one sample.

    ``method``: ``percentile`` or ``bca`` (bias-corrected and accelerated, jackknife acceleration),
    the two ``scipy.stats.bootstrap`` offers as 'percentile' and 'BCa'."""
    from scipy.stats import norm

    x = as_array(data, "data")
    if x.size < 2:
        raise ValueError("the bootstrap needs at least 2 values")
    if method not in ("percentile", "bca"):
        raise ValueError("method must be 'percentile' or 'bca'")
    rng = np.random.default_rng(seed)
    est = float(statistic(x))
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    boot = np.array([float(statistic(x[row])) for row in idx])
    alpha = (1 - confidence) / 2
    if method == "percentile":
        lo, hi = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)])
        return BootstrapCI(est, float(lo), float(hi), confidence, method, n_resamples, seed)
    prop = (np.count_nonzero(boot < est) + 0.5 * np.count_nonzero(boot == est)) / n_resamples
    if prop <= 0 or prop >= 1:  # degenerate: every resample on one side
        return BootstrapCI(est, float(np.min(boot)), float(np.max(boot)), confidence, method, n_resamples, seed)
    z0 = float(norm.ppf(prop))
    jack = np.array([float(statistic(np.delete(x, i))) for i in range(x.size)])
    jm = jack.mean()
    num = float(np.sum((jm - jack) ** 3))
    den = 6.0 * float(np.sum((jm - jack) ** 2)) ** 1.5
    acc = num / den if den > 0 else 0.0
    qs = []
    for z_alpha in (norm.ppf(alpha), norm.ppf(1 - alpha)):
        z = z0 + (z0 + z_alpha) / (1 - acc * (z0 + z_alpha))
        qs.append(float(norm.cdf(z)))
    lo, hi = np.percentile(boot, [100 * qs[0], 100 * qs[1]])
    return BootstrapCI(est, float(lo), float(hi), confidence, method, n_resamples, seed)
