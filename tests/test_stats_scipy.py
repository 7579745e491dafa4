"""kyokan.stats against scipy / the krippendorff package / hand computations."""

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


def test_pearson_on_likert_means_and_zero_variance() -> None:
    judge = [5, 4, 5, 3, 5, 4, 5, 5, 2, 4]
    human = [4.33, 4.0, 4.67, 3.33, 4.0, 4.67, 5.0, 4.33, 3.0, 3.67]
    ref = sps.pearsonr(judge, human)
    ours = ks.pearson(judge, human)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    with pytest.raises(ValueError, match="no variance"):
        ks.pearson([5] * 10, human)


@pytest.mark.parametrize("alt", ALTS)
def test_spearman_matches_scipy_with_ties(alt: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(1, 6, size=40)
    y = np.clip(x + rng.integers(-2, 3, size=40), 1, 5)
    ref = sps.spearmanr(x, y, alternative=alt)
    ours = ks.spearman(x, y, alternative=alt)  # type: ignore[arg-type]
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


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
    a, b = _data(4, n=18)
    p = ks.paired_t(a, b, alternative=alt)  # type: ignore[arg-type]
    ref = sps.ttest_rel(a, b, alternative=alt)
    assert p.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert p.pvalue == pytest.approx(ref.pvalue, rel=1e-9)


def test_cohens_d_by_hand() -> None:
    a = [2.0, 4.0, 6.0]
    b = [1.0, 2.0, 3.0]
    # pooled SD = sqrt((2*4 + 2*1) / 4) = sqrt(2.5); d = (4 - 2) / sqrt(2.5)
    assert ks.cohens_d(a, b) == pytest.approx(2 / math.sqrt(2.5))
    # paired: differences 1, 2, 3 -> mean 2, sd 1
    assert ks.cohens_d(a, b, paired=True) == pytest.approx(2.0)
    assert ks.welch_t(a, b).effect_size == pytest.approx(2 / math.sqrt(2.5))


@pytest.mark.parametrize("alt", ALTS)
def test_permutation_exact_matches_scipy(alt: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=7) + 0.8
    y = rng.normal(size=6)
    ours = ks.permutation_test(x, y, alternative=alt)  # type: ignore[arg-type]
    ref = sps.permutation_test((x, y), lambda a, b: np.mean(a) - np.mean(b), permutation_type="independent",
                               alternative=alt, n_resamples=9999, vectorized=False)
    assert ours.extra is not None and ours.extra["exact"]
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.pvalue == pytest.approx(ref.pvalue, abs=1e-12)
    # paired: sign flips
    a, b = rng.normal(size=10) + 0.5, rng.normal(size=10)
    ours = ks.permutation_test(a, b, paired=True, alternative=alt)  # type: ignore[arg-type]
    ref = sps.permutation_test((a - b,), np.mean, permutation_type="samples", alternative=alt, vectorized=False)
    assert ours.pvalue == pytest.approx(ref.pvalue, abs=1e-12)


def test_permutation_sampled_close_to_scipy() -> None:
    x, y = _data(11, n=40, shift=0.4)
    ours = ks.permutation_test(x, y, alternative="less", n_resamples=4999, seed=1)
    ref = sps.permutation_test((x, y), lambda a, b: np.mean(a) - np.mean(b), alternative="less",
                               n_resamples=4999, vectorized=False, rng=1)
    assert ours.extra is not None and not ours.extra["exact"]
    assert abs(ours.pvalue - ref.pvalue) < 0.02
    again = ks.permutation_test(x, y, alternative="less", n_resamples=4999, seed=1)
    assert again.pvalue == ours.pvalue  # seeded


def test_mcnemar_exact_and_chi2() -> None:
    a = np.array([1] * 30 + [0] * 12 + [1] * 3 + [0] * 55)
    b = np.array([1] * 30 + [1] * 12 + [0] * 3 + [0] * 55)
    ex = ks.mcnemar(a, b)
    assert ex.extra == {"a_only": 3, "b_only": 12, "both": 30, "neither": 55}
    assert ex.pvalue == pytest.approx(sps.binomtest(3, 15, 0.5).pvalue, rel=1e-12)
    chi = ks.mcnemar(a, b, exact=False)
    assert chi.statistic == pytest.approx((abs(3 - 12) - 1) ** 2 / 15)
    assert chi.pvalue == pytest.approx(sps.chi2.sf((abs(3 - 12) - 1) ** 2 / 15, 1))
    # without continuity correction it equals the chi-square test of the 2x2 discordant counts vs 50/50
    nc = ks.mcnemar(a, b, exact=False, correction=False)
    ref = sps.chisquare([3, 12])
    assert nc.statistic == pytest.approx(ref.statistic) and nc.pvalue == pytest.approx(ref.pvalue)
    assert ks.mcnemar([1, 0], [1, 0]).pvalue == 1.0


def test_bonferroni_holm_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert ks.bonferroni(p) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert ks.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ks.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("method,scipy_method", [("percentile", "percentile"), ("bca", "BCa")])
def test_bootstrap_close_to_scipy(method: str, scipy_method: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, size=60)
    ours = ks.bootstrap_ci(x, method=method, n_resamples=9999, seed=2)
    ref = sps.bootstrap((x,), np.mean, method=scipy_method, n_resamples=9999, rng=2).confidence_interval
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert abs(ours.low - ref.low) < 0.1 * se
    assert abs(ours.high - ref.high) < 0.1 * se
    assert ours.low < x.mean() < ours.high


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
