"""kyokan.stats against scipy / the krippendorff package / hand computations, and the one
convention for missing values and undefined statistics (None, with a reason)."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from scipy import stats as sps

from kyokan import stats as ks

ALTS = ("two-sided", "greater", "less")


def _data(seed: int, n: int = 30, shift: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=n) + shift
    return x, y


# --- correlations ------------------------------------------------------------------------


@pytest.mark.parametrize("alt", ALTS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pearson_matches_scipy(seed: int, alt: str) -> None:
    x, y = _data(seed)
    ours = ks.pearson(x, y, alternative=alt)  # type: ignore[arg-type]
    ref = sps.pearsonr(x, y, alternative=alt)
    ci = ref.confidence_interval(0.95)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert ours.ci_low == pytest.approx(ci.low, abs=1e-12)
    assert ours.ci_high == pytest.approx(ci.high, abs=1e-12)


@pytest.mark.parametrize("alt", ALTS)
def test_spearman_matches_scipy_with_ties(alt: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(1, 6, size=40)
    y = np.clip(x + rng.integers(-2, 3, size=40), 1, 5)
    ref = sps.spearmanr(x, y, alternative=alt)
    ours = ks.spearman(x, y, alternative=alt)  # type: ignore[arg-type]
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


def test_correlations_on_judge_ratings_drop_incomplete_pairs() -> None:
    # integer judge scores against rater means, with missing values on both sides (what the judge
    # summary and EmplifAI Table 5 pass in)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, 40).astype(float)
    y = np.clip(x + rng.integers(-1, 2, 40), 1, 5)
    xs: list[float | None] = list(x)
    ys: list[float | None] = list(y)
    xs[3], ys[7], xs[11] = None, None, float("nan")
    keep = [i for i in range(40) if i not in (3, 7, 11)]
    p, s = ks.pearson(xs, ys), ks.spearman(xs, ys)
    assert p.n == s.n == 37
    assert p.statistic == pytest.approx(sps.pearsonr(x[keep], y[keep]).statistic, abs=1e-12)
    assert p.pvalue == pytest.approx(sps.pearsonr(x[keep], y[keep]).pvalue, rel=1e-9)
    assert s.statistic == pytest.approx(sps.spearmanr(x[keep], y[keep]).statistic, abs=1e-12)
    assert ks.mean_absolute_difference([1, 2, None], [2, 2, 5]) == 0.5
    assert ks.mean_difference([1, 2, None], [2, 2, 5]) == -0.5
    assert ks.exact_agreement([1, 2, 3, None], [1, 3, 3, 4]) == pytest.approx(2 / 3)


def test_undefined_correlations_are_none_with_a_reason() -> None:
    human = [4.33, 4.0, 4.67, 3.33, 4.0, 4.67, 5.0, 4.33, 3.0, 3.67]
    const = ks.pearson([5] * 10, human)  # a judge that gives every dialogue 5 (EmplifAI Table 5)
    assert const.statistic is None and const.pvalue is None and const.n == 10
    assert const.reason == "x has no variance (every value is 5)"
    assert ks.spearman(human, [5] * 10).reason == "y has no variance (every value is 5)"
    # n < 3: r would be ±1 with no p-value
    two = ks.pearson([1, 2], [3, 5])
    assert two.statistic is None and "fewer than 3" in str(two.reason)
    assert ks.pearson([1, 2, None, 4], [1, None, 3, 2]).statistic is None  # 2 complete pairs
    assert ks.mean_absolute_difference([None], [1]) is None
    assert ks.exact_agreement([], []) is None
    with pytest.raises(ValueError, match="differ in length"):
        ks.pearson([1, 2, 3], [1, 2])


# --- t-tests and effect sizes ------------------------------------------------------------


@pytest.mark.parametrize("alt", ALTS)
def test_welch_student_paired_match_scipy(alt: str) -> None:
    x, y = _data(3, n=25)
    y = y[:20] * 2.0
    w = ks.welch_t(x, y, alternative=alt)  # type: ignore[arg-type]
    ref = sps.ttest_ind(x, y, equal_var=False, alternative=alt)
    assert w.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert w.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    assert w.df == pytest.approx(ref.df, rel=1e-12)
    s = ks.student_t(x, y, alternative=alt)  # type: ignore[arg-type]
    ref = sps.ttest_ind(x, y, alternative=alt)
    assert s.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert s.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    assert s.df == ref.df
    a, b = _data(4, n=18)
    p = ks.paired_t(a, b, alternative=alt)  # type: ignore[arg-type]
    ref = sps.ttest_rel(a, b, alternative=alt)
    assert p.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert p.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    assert p.df == ref.df
    # the paired t is d_z * sqrt(n)
    assert p.d_z is not None and p.statistic == pytest.approx(p.d_z * math.sqrt(18))


def test_both_effect_sizes_by_hand() -> None:
    a = [3.0, 5.0, 7.0, 9.0]
    b = [1.0, 4.0, 6.0, 6.0]
    # differences 2, 1, 1, 3: mean 1.75, SD sqrt(2.75 / 3) -> d_z = 1.75 / 0.957427 = 1.827815
    dz = 1.75 / math.sqrt(2.75 / 3)
    # s_a^2 = 20/3, s_b^2 = 16.75/3, pooled = sqrt((20 + 16.75) / 6) = sqrt(6.125); d = 1.75 / 2.474874 = 0.707107
    dp = 1.75 / math.sqrt(6.125)
    assert dz == pytest.approx(1.827815, abs=1e-6) and dp == pytest.approx(0.707107, abs=1e-6)
    assert ks.cohens_dz(a, b) == pytest.approx(dz)
    assert ks.cohens_d(a, b) == pytest.approx(dp)
    r = ks.paired_t(a, b)
    assert (r.d_z, r.d_pooled, r.effect_size, r.mean_diff) == pytest.approx((dz, dp, dz, 1.75))
    assert r.sd_diff == pytest.approx(math.sqrt(2.75 / 3))
    w = ks.welch_t(a, b)
    assert w.d_pooled == pytest.approx(dp) and w.effect_size == pytest.approx(dp) and w.d_z is None
    # textbook case: pooled SD sqrt((2*4 + 2*1) / 4) = sqrt(2.5)
    assert ks.cohens_d([2, 4, 6], [1, 2, 3]) == pytest.approx(2 / math.sqrt(2.5))
    assert ks.cohens_dz([2, 4, 6], [1, 2, 3]) == pytest.approx(2.0)


@pytest.mark.filterwarnings("ignore:Precision loss occurred")
def test_undefined_tests_are_none_where_scipy_says_inf_or_nan() -> None:
    # every paired difference is 1: scipy returns t = inf, p = 0; the t-test is undefined
    assert sps.ttest_rel([2, 3, 4], [1, 2, 3]).statistic == math.inf
    r = ks.paired_t([2, 3, 4], [1, 2, 3])
    assert r.statistic is None and r.pvalue is None and r.d_z is None and "no variance" in str(r.reason)
    assert r.d_pooled == pytest.approx(1.0)  # the samples vary, so the pooled d exists
    w = ks.welch_t([1, 1, 1], [2, 2, 2])
    assert w.statistic is None and w.reason == "neither group has any variance" and w.mean_diff == -1.0
    assert ks.student_t([1], [2, 3]).reason == "fewer than 2 values in a group"
    assert ks.cohens_d([1, 1], [1, 1]) is None and ks.cohens_dz([1], [2]) is None
    # missing values: independent samples drop them one by one, paired ones drop the pair
    x = [1.0, 2.0, None, 4.0, 5.0]
    y = [2.0, None, 3.0, 5.0, 7.0]
    assert ks.welch_t(x, y).n_a == 4
    p = ks.paired_t(x, y)
    ref = sps.ttest_rel([1, 4, 5], [2, 5, 7])
    assert p.n_a == 3 and p.pvalue == pytest.approx(ref.pvalue)


# --- permutation tests ---------------------------------------------------------------------


@pytest.mark.parametrize("alt", ALTS)
def test_permutation_exact_matches_scipy(alt: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=7) + 0.8
    y = rng.normal(size=6)
    ours = ks.permutation_test(x, y, alternative=alt)  # type: ignore[arg-type]
    ref = sps.permutation_test((x, y), lambda a, b: np.mean(a) - np.mean(b), permutation_type="independent",
                               alternative=alt, n_resamples=9999, vectorized=False)
    assert ours.exact and ours.n_resamples == math.comb(13, 7)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.pvalue == pytest.approx(ref.pvalue, abs=1e-12)
    # the smallest p an exact test can give: one rearrangement of C(13, 7) (doubled two-sided)
    assert ours.min_pvalue == pytest.approx((2 if alt == "two-sided" else 1) / math.comb(13, 7))
    # paired: sign flips
    a, b = rng.normal(size=10) + 0.5, rng.normal(size=10)
    ours = ks.permutation_test(a, b, paired=True, alternative=alt)  # type: ignore[arg-type]
    ref = sps.permutation_test((a - b,), np.mean, permutation_type="samples", alternative=alt, vectorized=False)
    assert ours.exact and ours.n_resamples == 1024
    assert ours.pvalue == pytest.approx(ref.pvalue, abs=1e-12)
    assert ours.min_pvalue == pytest.approx((2 if alt == "two-sided" else 1) / 1024)
    assert ours.d_z == pytest.approx(ks.cohens_dz(a, b)) and ours.d_pooled == pytest.approx(ks.cohens_d(a, b))


def test_permutation_sampled_close_to_scipy_and_seeded() -> None:
    x, y = _data(11, n=40, shift=0.4)
    ours = ks.permutation_test(x, y, alternative="less", n_resamples=4999, seed=1)
    ref = sps.permutation_test((x, y), lambda a, b: np.mean(a) - np.mean(b), alternative="less",
                               n_resamples=4999, vectorized=False, rng=1)
    assert ours.exact is False and ours.n_resamples == 4999 and ours.seed == 1
    assert abs(ours.pvalue - ref.pvalue) < 0.02  # type: ignore[operator]
    assert ours.pvalue * 5000 == pytest.approx(round(ours.pvalue * 5000))  # type: ignore[operator]  # (k+1)/(N+1)
    again = ks.permutation_test(x, y, alternative="less", n_resamples=4999, seed=1)
    assert again == ours  # seeded: the same result, field for field
    assert ks.permutation_test(x, y, alternative="less", n_resamples=4999, seed=2).pvalue != ours.pvalue


@pytest.mark.parametrize("alt", ALTS)
def test_permutation_smallest_attainable_p_equals_scipy(alt: str) -> None:
    # an effect no rearrangement reaches: the sampled p is the floor 1/(N+1) (2/(N+1) two-sided),
    # exactly as scipy computes it — so 9,999 resamples can never show p < 1e-5
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=60) + (4 if alt != "less" else -4), rng.normal(size=60)
    for n in (999, 9999):
        ours = ks.permutation_test(a, b, paired=True, alternative=alt, n_resamples=n)  # type: ignore[arg-type]
        ref = sps.permutation_test((a - b,), np.mean, permutation_type="samples", alternative=alt,
                                   n_resamples=n, rng=0)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
        assert ours.min_pvalue == ours.pvalue == ks.min_attainable_pvalue(n, alt)
    assert ks.min_attainable_pvalue(9999, "greater") == pytest.approx(1e-4)
    need = ks.resamples_needed(1e-5, alt)
    assert ks.min_attainable_pvalue(need, alt) < 1e-5 <= ks.min_attainable_pvalue(need - 1, alt)
    assert ks.resamples_needed(1e-5, "greater", family_size=40) == 4_000_000


def test_permutation_exact_on_request_and_refused_when_too_large() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=16) + 1, rng.normal(size=16)
    forced = ks.permutation_test(a, b, paired=True, alternative="greater", n_resamples=99, exact=True)
    ref = sps.permutation_test((a - b,), np.mean, permutation_type="samples", alternative="greater",
                               n_resamples=2 ** 16)
    assert forced.exact and forced.n_resamples == 2 ** 16 and forced.pvalue == pytest.approx(ref.pvalue, abs=1e-12)
    sampled = ks.permutation_test(a[:4], b[:4], paired=True, exact=False, n_resamples=500)
    assert sampled.exact is False and sampled.n_resamples == 500
    with pytest.raises(ValueError, match="more than 1,048,576"):
        ks.permutation_test(rng.normal(size=30), rng.normal(size=30), paired=True, exact=True)


# --- McNemar -------------------------------------------------------------------------------


@pytest.mark.parametrize("alt", ALTS)
def test_mcnemar_exact_honours_the_alternative(alt: str) -> None:
    a = np.array([1] * 30 + [0] * 12 + [1] * 3 + [0] * 55)
    b = np.array([1] * 30 + [1] * 12 + [0] * 3 + [0] * 55)
    for x, y in ((a, b), (b, a)):
        r = ks.mcnemar(x, y, alternative=alt)  # type: ignore[arg-type]
        n10 = int(np.sum((x == 1) & (y == 0)))
        ref = sps.binomtest(n10, 15, 0.5, alternative=alt)
        assert r.statistic == n10 and r.alternative == alt
        assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
        assert r.effect_size == pytest.approx(x.mean() - y.mean())
    assert ks.mcnemar(a, b).extra == {"a_only": 3, "b_only": 12, "both": 30, "neither": 55, "discordant": 15}
    assert ks.mcnemar([1, 0], [1, 0], alternative=alt).pvalue == 1.0  # type: ignore[arg-type]


def test_mcnemar_chi2_is_two_sided_only() -> None:
    a = np.array([1] * 30 + [0] * 12 + [1] * 3 + [0] * 55)
    b = np.array([1] * 30 + [1] * 12 + [0] * 3 + [0] * 55)
    chi = ks.mcnemar(a, b, exact=False)
    assert chi.statistic == pytest.approx((abs(3 - 12) - 1) ** 2 / 15)
    assert chi.pvalue == pytest.approx(sps.chi2.sf((abs(3 - 12) - 1) ** 2 / 15, 1))
    # without continuity correction it equals the chi-square test of the discordant counts vs 50/50
    nc = ks.mcnemar(a, b, exact=False, correction=False)
    ref = sps.chisquare([3, 12])
    assert nc.statistic == pytest.approx(ref.statistic) and nc.pvalue == pytest.approx(ref.pvalue)
    with pytest.raises(ValueError, match="two-sided only"):
        ks.mcnemar(a, b, exact=False, alternative="greater")
    with pytest.raises(ValueError, match="binary"):
        ks.mcnemar([0, 2], [1, 0])


# --- corrections and bootstrap -------------------------------------------------------------


def test_bonferroni_holm_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert ks.bonferroni(p) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert ks.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ks.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert ks.adjust(p, "none") == p
    with pytest.raises(ValueError, match="unknown correction"):
        ks.adjust(p, "fdr")


def test_bootstrap_by_hand() -> None:
    # the resamples are rows of rng.integers(0, n, (B, n)) from PCG64(seed); redo them here
    x = np.array([2.0, 4.0, 9.0, 1.0, 5.0])
    ci = ks.bootstrap_ci(x, method="percentile", n_resamples=400, seed=5)
    idx = np.random.Generator(np.random.PCG64(5)).integers(0, 5, size=(400, 5))
    means = x[idx].mean(axis=1)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert ci.estimate == 4.2 and ci.n == 5 and ci.seed == 5
    # two values {0, 1}: a resample's mean is 0 with prob 1/4, 1 with prob 1/4, 1/2 otherwise ->
    # the 2.5% and 97.5% quantiles are 0 and 1
    two = ks.bootstrap_ci([0.0, 1.0], method="percentile", n_resamples=4000, seed=0)
    assert (two.low, two.high) == (0.0, 1.0)
    one = ks.bootstrap_ci([3.0, None])
    assert one.low is None and one.high is None and one.estimate == 3.0 and "fewer than 2" in str(one.reason)


@pytest.mark.parametrize("method,scipy_method", [("percentile", "percentile"), ("bca", "BCa")])
def test_bootstrap_close_to_scipy(method: str, scipy_method: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, size=60)
    ours = ks.bootstrap_ci(x, method=method, n_resamples=9999, seed=2)
    ref = sps.bootstrap((x,), np.mean, method=scipy_method, n_resamples=9999, rng=2).confidence_interval
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert ours.low is not None and ours.high is not None
    assert abs(ours.low - ref.low) < 0.1 * se
    assert abs(ours.high - ref.high) < 0.1 * se
    assert ours.low < x.mean() < ours.high
    # a statistic other than the mean goes through the general path
    med = ks.bootstrap_ci(x, np.median, method=method, n_resamples=2000, seed=2)
    ref = sps.bootstrap((x,), np.median, method=scipy_method, n_resamples=2000, rng=2).confidence_interval
    assert med.low is not None and abs(med.low - ref.low) < 0.25 * se


def test_bootstrap_mean_summary() -> None:
    vals = [0.0, 1.0, 1.0, 0.0, 1.0, None, float("nan")]
    s = ks.bootstrap_mean(vals, seed=3, resamples=500)
    ci = ks.bootstrap_ci([0, 1, 1, 0, 1], method="percentile", n_resamples=500, seed=3)
    assert s == {"mean": 0.6, "ci_low": ci.low, "ci_high": ci.high, "std": pytest.approx(np.std([0, 1, 1, 0, 1], ddof=1)),
                 "n": 5, "missing": 2}
    assert ks.bootstrap_mean([2.5]) == {"mean": 2.5, "ci_low": None, "ci_high": None, "std": None, "n": 1, "missing": 0}
    assert ks.bootstrap_mean([None])["mean"] is None


# --- agreement -----------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["ordinal", "interval", "nominal", "ratio"])
def test_krippendorff_matches_package(level: str) -> None:
    rng = np.random.default_rng(9)
    truth = rng.integers(1, 6, size=40)
    data = np.array([np.clip(truth + rng.integers(-1, 2, size=40), 1, 5) for _ in range(3)], dtype=float)
    data[0, :5] = np.nan  # missing ratings
    data[1, 7] = np.nan
    ours = ks.krippendorff_alpha(data, level)
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert ours == pytest.approx(ref, abs=1e-10)


def test_krippendorff_with_none_as_missing_and_undefined() -> None:
    # judges × items as the judge summary passes them: lists with None for an unscored item
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, 40).astype(float)
    y = np.clip(x + rng.integers(-1, 2, 40), 1, 5)
    data = [list(x), list(y), [v if i % 3 else None for i, v in enumerate(np.clip(y + 1, 1, 5))]]
    ref = krippendorff.alpha(reliability_data=np.array([[np.nan if v is None else v for v in r] for r in data]),
                             level_of_measurement="interval")
    assert ks.krippendorff_alpha(data, "interval") == pytest.approx(ref)
    assert ks.krippendorff_alpha([[3, 3, 3], [3, 3, 3]]) is None  # no variation: undefined
    assert ks.krippendorff_alpha([[1, None], [None, 2]]) is None  # nothing pairable


def test_krippendorff_textbook_example() -> None:
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", 4 observers x 12 units, interval alpha 0.849
    nan = np.nan
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    assert ks.krippendorff_alpha(data, "interval") == pytest.approx(0.849, abs=5e-4)
    assert ks.krippendorff_alpha(data, "nominal") == pytest.approx(0.743, abs=5e-4)


SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_icc_shrout_fleiss_table() -> None:
    v = ks.icc_all(SHROUT_FLEISS)
    # Shrout & Fleiss (1979), Table 4
    expected = {"ICC(1,1)": 0.17, "ICC(2,1)": 0.29, "ICC(3,1)": 0.71, "ICC(1,k)": 0.44, "ICC(2,k)": 0.62, "ICC(3,k)": 0.91}
    for form, val in expected.items():
        assert v[form] == pytest.approx(val, abs=0.005), form


def test_icc_hand_computation() -> None:
    y = np.array([[1.0, 2.0], [3.0, 3.0], [5.0, 6.0]])
    n, k = y.shape
    grand = y.mean()  # 20/6
    msr = k * ((y.mean(1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((y.mean(0) - grand) ** 2).sum() / (k - 1)
    mse = (((y - grand) ** 2).sum() - msr * (n - 1) - msc * (k - 1)) / ((n - 1) * (k - 1))
    want21 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    assert ks.icc(y, "ICC(2,1)").value == pytest.approx(want21)
    assert ks.icc(y, "ICC(3,k)").value == pytest.approx((msr - mse) / msr)
    # nested design -> one-way forms are chosen and say so
    res = ks.icc_auto({"u1": {"a": 1, "b": 2}, "u2": {"c": 3, "d": 3}, "u3": {"e": 5, "f": 6}})
    assert [r.form for r in res] == ["ICC(1,1)", "ICC(1,2)"]
    assert res[0].value == pytest.approx(ks.icc_all(y)["ICC(1,1)"])
    crossed = ks.icc_auto({"u1": {"a": 1, "b": 2}, "u2": {"a": 3, "b": 3}, "u3": {"a": 5, "b": 6}})
    assert [r.form for r in crossed] == ["ICC(2,1)", "ICC(2,2)"]
    assert set(ks.icc_all([[1.0, 2.0]]).values()) == {None}  # one unit: undefined
