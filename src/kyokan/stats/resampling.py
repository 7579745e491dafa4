"""Permutation tests and bootstrap confidence intervals (seeded, deterministic, exact when asked
or when every rearrangement fits in the resamples).

**Permutation test.** The statistic is the difference of means, a − b (independent samples:
group labels shuffled; paired samples: signs of the differences flipped). The null distribution
is enumerated exactly when ``exact=True``, or by default when the number of distinct
rearrangements (C(n_a+n_b, n_a), or 2^n sign flips) is at most ``n_resamples`` — scipy's rule;
otherwise ``n_resamples`` random rearrangements are drawn from numpy's PCG64 generator seeded with
``seed`` (in batches of 10,000, so a seed gives the same p on every machine) and
p = (k + 1) / (n_resamples + 1), the conventions of ``scipy.stats.permutation_test``. Two-sided
p = min(1, 2·min(p_less, p_greater)).

**Smallest attainable p.** A sampled test cannot give p below 1 / (n_resamples + 1) one-sided
(2 / (n_resamples + 1) two-sided): with 9,999 resamples that is 1e-4, so a threshold such as EmPO's
p < 1e-5 is unreachable. Every result carries it as ``min_pvalue``; :func:`resamples_needed`
says how many resamples a threshold needs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kyokan.stats.base import (
    Alternative,
    Values,
    as_array,
    check_alternative,
    complete_pairs,
    drop_missing,
)
from kyokan.stats.significance import D_POOLED, D_Z, TestResult, cohens_d, cohens_dz

#: the most rearrangements an exact test enumerates (time and memory stay within seconds / ~100 MB)
MAX_EXACT = 2 ** 20
_BATCH = 10_000


def _combinations(n: int, k: int) -> Iterator[np.ndarray]:
    """All k-subsets of range(n) as index arrays, in batches."""
    it = itertools.combinations(range(n), k)
    while True:
        chunk = list(itertools.islice(it, _BATCH))
        if not chunk:
            return
        yield np.array(chunk, dtype=np.intp)


def _null_independent(x: np.ndarray, y: np.ndarray, exact: bool, n_resamples: int,
                      rng: np.random.Generator) -> np.ndarray:
    pooled = np.concatenate([x, y])
    n, na = pooled.size, x.size
    total = pooled.sum()
    parts = []
    if exact:
        for idx in _combinations(n, na):
            sa = pooled[idx].sum(axis=1)
            parts.append(sa / na - (total - sa) / (n - na))
        return np.concatenate(parts)
    done = 0
    while done < n_resamples:
        b = min(_BATCH, n_resamples - done)
        perm = rng.permuted(np.tile(pooled, (b, 1)), axis=1)
        parts.append(perm[:, :na].mean(axis=1) - perm[:, na:].mean(axis=1))
        done += b
    return np.concatenate(parts)


def _null_paired(d: np.ndarray, exact: bool, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = d.size
    parts = []
    if exact:
        positions = np.arange(n)
        for start in range(0, 2 ** n, _BATCH):
            i = np.arange(start, min(2 ** n, start + _BATCH))
            signs = 1.0 - 2.0 * ((i[:, None] >> positions) & 1)
            parts.append(signs @ d / n)
        return np.concatenate(parts)
    done = 0
    while done < n_resamples:
        b = min(_BATCH, n_resamples - done)
        # a flip per random bit: sum(±d) = sum(d) − 2·(bits @ d); bits from bytes (8 per draw) are fast
        bits = np.unpackbits(rng.integers(0, 256, size=(b, (n + 7) // 8), dtype=np.uint8), axis=1, count=n)
        parts.append((d.sum() - 2.0 * (bits @ d)) / n)
        done += b
    return np.concatenate(parts)


def _tail_pvalues(null: np.ndarray, observed: float, adj: int) -> tuple[float, float]:
    gamma = abs(np.finfo(float).eps * 100 * observed)  # scipy's tolerance for ties in floating point
    less = (np.count_nonzero(null <= observed + gamma) + adj) / (null.size + adj)
    greater = (np.count_nonzero(null >= observed - gamma) + adj) / (null.size + adj)
    return float(less), float(greater)


def _combine(less: float, greater: float, alternative: str) -> float:
    if alternative == "less":
        return less
    if alternative == "greater":
        return greater
    return min(1.0, 2 * min(less, greater))


def min_attainable_pvalue(n_resamples: int, alternative: str) -> float:
    """The smallest p a sampled permutation test with ``n_resamples`` can give."""
    check_alternative(alternative)
    one = 1.0 / (n_resamples + 1)
    return min(1.0, 2 * one) if alternative == "two-sided" else one


def resamples_needed(threshold: float, alternative: str, family_size: int = 1) -> int:
    """The fewest resamples for which a sampled test's smallest p — times ``family_size`` when the
    p-values are Bonferroni/Holm corrected over that many tests — falls below ``threshold``."""
    check_alternative(alternative)
    if not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")
    k = (2 if alternative == "two-sided" else 1) * family_size
    # the smallest N with k / (N + 1) < threshold; k / threshold is inexact in floating point
    n = max(0, math.floor(k / threshold) - 2)
    while k / (n + 1) >= threshold:
        n += 1
    return n


def _rearrangements(paired: bool, n_a: int, n_b: int) -> int:
    return 2 ** n_a if paired else math.comb(n_a + n_b, n_a)


def permutation_test(a: Values, b: Values, *, paired: bool = False, alternative: Alternative = "two-sided",
                     n_resamples: int = 9999, exact: bool | None = None, seed: int = 0) -> TestResult:
    """Permutation test of mean(a) − mean(b) (see the module doc).

    ``exact``: None (default) enumerates when every rearrangement fits in ``n_resamples``; True
    always enumerates (``ValueError`` beyond :data:`MAX_EXACT` rearrangements); False always
    samples. Effect sizes: the pooled d, and for paired data d_z (``effect_size``) too."""
    check_alternative(alternative)
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    if paired:
        x, y = complete_pairs(a, b)
    else:
        x, y = drop_missing(a, "a"), drop_missing(b, "b")
    name = "permutation_paired" if paired else "permutation"
    dp = cohens_d(x, y)
    dz = cohens_dz(x, y) if paired else None
    base: dict[str, Any] = {"n_a": x.size, "n_b": y.size, "mean_a": float(x.mean()) if x.size else None,
                            "mean_b": float(y.mean()) if y.size else None, "d_pooled": dp, "d_z": dz,
                            "effect_size": dz if paired else dp, "effect_name": D_Z if paired else D_POOLED,
                            "seed": seed}
    if x.size < 1 or y.size < 1:
        return TestResult(name, None, None, alternative, **base, n_resamples=n_resamples,
                          reason="a sample has no values" if not paired else "no complete pair")
    total = _rearrangements(paired, x.size, y.size)
    if exact is None:
        exact = total <= min(n_resamples, MAX_EXACT)
    elif exact and total > MAX_EXACT:
        what = f"2^{x.size} sign flips" if paired else f"C({x.size + y.size}, {x.size}) relabellings"
        raise ValueError(f"an exact permutation test would enumerate {what} ({total:.3g}), more than "
                         f"{MAX_EXACT:,}; draw random resamples instead (exact=False, n_resamples=…)")
    rng = np.random.default_rng(seed)
    if paired:
        d = x - y
        observed = float(d.mean())
        null = _null_paired(d, exact, n_resamples, rng)
        sd = float(np.std(d, ddof=1)) if d.size > 1 else None
    else:
        observed = float(x.mean() - y.mean())
        null = _null_independent(x, y, exact, n_resamples, rng)
        sd = None
    adj = 0 if exact else 1
    p = _combine(*_tail_pvalues(null, observed, adj), alternative)
    if exact:
        lo, hi = float(null.min()), float(null.max())
        c_min = _tail_pvalues(null, lo, 0)[0]
        c_max = _tail_pvalues(null, hi, 0)[1]
        p_min = _combine(c_min, c_max, alternative) if alternative == "two-sided" else \
            (c_max if alternative == "greater" else c_min)
    else:
        p_min = min_attainable_pvalue(n_resamples, alternative)
    extra = {"statistic": "difference of means (a − b)",
             "rearrangements": total if total < 2 ** 53 else float(total)}
    return TestResult(name, observed, float(min(1.0, max(0.0, p))), alternative, None, mean_diff=observed,
                      sd_diff=sd, n_resamples=int(null.size), exact=bool(exact), min_pvalue=float(p_min),
                      extra=extra, **base)


@dataclass(frozen=True)
class BootstrapCI:
    """A two-sided bootstrap interval; ``low``/``high`` None (with ``reason``) with fewer than 2 values."""

    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    n: int
    n_resamples: int
    seed: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resample_stats(x: np.ndarray, statistic: Callable[[np.ndarray], float], idx: np.ndarray) -> np.ndarray:
    if statistic is np.mean:
        return x[idx].mean(axis=1)
    return np.array([float(statistic(x[row])) for row in idx])


def bootstrap_ci(data: Values, statistic: Callable[[np.ndarray], float] = np.mean, *,
                 confidence: float = 0.95, n_resamples: int = 9999, method: str = "bca",
                 seed: int = 0) -> BootstrapCI:
    """Two-sided bootstrap confidence interval of ``statistic`` over the non-missing values.

    Resamples: ``n_resamples`` rows of indices ``rng.integers(0, n, (n_resamples, n))`` from numpy's
    PCG64 generator seeded with ``seed``. ``method``: ``percentile`` — the (1−c)/2 and (1+c)/2
    quantiles (numpy's linear interpolation) of the resampled statistics — or ``bca``
    (bias-corrected and accelerated, jackknife acceleration): the two ``scipy.stats.bootstrap``
    offers as 'percentile' and 'BCa'."""
    from scipy.stats import norm

    if method not in ("percentile", "bca"):
        raise ValueError("method must be 'percentile' or 'bca'")
    x = drop_missing(data, "data")
    if x.size < 2:
        est = float(statistic(x)) if x.size else None
        return BootstrapCI(est, None, None, confidence, method, int(x.size), n_resamples, seed,
                           reason=f"fewer than 2 values (n={x.size})")
    rng = np.random.default_rng(seed)
    est = float(statistic(x))
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    boot = _resample_stats(x, statistic, idx)
    alpha = (1 - confidence) / 2

    def done(lo: float, hi: float) -> BootstrapCI:
        return BootstrapCI(est, float(lo), float(hi), confidence, method, int(x.size), n_resamples, seed)

    if method == "percentile":
        lo, hi = np.quantile(boot, [alpha, (1 + confidence) / 2])
        return done(lo, hi)
    prop = (np.count_nonzero(boot < est) + 0.5 * np.count_nonzero(boot == est)) / n_resamples
    if prop <= 0 or prop >= 1:  # degenerate: every resample on one side
        return done(float(np.min(boot)), float(np.max(boot)))
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
    lo, hi = np.quantile(boot, qs)
    return done(lo, hi)


def bootstrap_mean(values: Values, *, seed: int = 0, resamples: int = 1000,
                   confidence: float = 0.95) -> dict[str, Any]:
    """The summary the metric stages write for one metric: ``mean`` and sample ``std`` (ddof 1)
    of the non-missing values with a seeded percentile-bootstrap interval (:func:`bootstrap_ci`,
    ``method="percentile"``). ``n`` counts the values used, ``missing`` those left out (None/NaN).
    With one value ``std`` and the interval are None; with none, the mean is None too."""
    arr = as_array(values, "values")
    x = arr[~np.isnan(arr)]
    out: dict[str, Any] = {"mean": None, "ci_low": None, "ci_high": None, "std": None, "n": int(x.size),
                           "missing": int(arr.size - x.size)}
    if x.size == 0:
        return out
    out["mean"] = float(x.mean())
    if x.size > 1:
        out["std"] = float(x.std(ddof=1))
        ci = bootstrap_ci(x, np.mean, confidence=confidence, n_resamples=resamples, method="percentile", seed=seed)
        out["ci_low"], out["ci_high"] = ci.low, ci.high
    return out
