"""Agreement and significance statistics, each checked against scipy in the tests.

Correlation (Pearson with p-value and CI, Spearman, MAD, exact agreement), Krippendorff's α, ICC,
Welch/Student/paired t-tests, permutation tests, McNemar, Cohen's d (pooled SD) and d_z,
Bonferroni/Holm, bootstrap CIs, and the paper-shaped analyses (EmplifAI Table 5: judge vs human;
EmPO Table 7: pairwise tests whose one-sided directions are given, never read from the data).

One convention everywhere (:mod:`kyokan.stats.base`): missing values (None/NaN) are left out,
and a statistic the data do not define is ``None`` with a ``reason``.
"""

from kyokan.stats.agreement import ICC_FORMS, ICCResult, icc, icc_all, icc_auto, krippendorff_alpha
from kyokan.stats.base import ALTERNATIVES, Alternative, complete_pairs, drop_missing, has_variance
from kyokan.stats.compare import (
    EFFECTS,
    TESTS,
    Comparison,
    TestSpec,
    comparisons_from_order,
    parse_comparisons,
    plan_comparisons,
    register_test,
)
from kyokan.stats.correlation import (
    CorrelationResult,
    exact_agreement,
    mean_absolute_difference,
    mean_difference,
    pearson,
    spearman,
)
from kyokan.stats.data import ScoreFile, ScoreGroups, load_scores, metric_names
from kyokan.stats.multiple import CORRECTIONS, adjust, bonferroni, holm
from kyokan.stats.resampling import (
    MAX_EXACT,
    BootstrapCI,
    bootstrap_ci,
    bootstrap_mean,
    min_attainable_pvalue,
    permutation_test,
    resamples_needed,
)
from kyokan.stats.significance import (
    TestResult,
    cohens_d,
    cohens_dz,
    mcnemar,
    paired_t,
    student_t,
    welch_t,
)
from kyokan.stats.tables import MARKERS, judge_vs_human, marker, pairwise_compare

__all__ = [
    "ALTERNATIVES",
    "CORRECTIONS",
    "EFFECTS",
    "ICC_FORMS",
    "MARKERS",
    "MAX_EXACT",
    "TESTS",
    "Alternative",
    "BootstrapCI",
    "Comparison",
    "CorrelationResult",
    "ICCResult",
    "ScoreFile",
    "ScoreGroups",
    "TestResult",
    "TestSpec",
    "adjust",
    "bonferroni",
    "bootstrap_ci",
    "bootstrap_mean",
    "cohens_d",
    "cohens_dz",
    "comparisons_from_order",
    "complete_pairs",
    "drop_missing",
    "exact_agreement",
    "has_variance",
    "holm",
    "icc",
    "icc_all",
    "icc_auto",
    "judge_vs_human",
    "krippendorff_alpha",
    "load_scores",
    "marker",
    "mcnemar",
    "mean_absolute_difference",
    "mean_difference",
    "metric_names",
    "min_attainable_pvalue",
    "paired_t",
    "pairwise_compare",
    "parse_comparisons",
    "pearson",
    "permutation_test",
    "plan_comparisons",
    "register_test",
    "resamples_needed",
    "spearman",
    "student_t",
    "welch_t",
]
