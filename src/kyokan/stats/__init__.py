"""Agreement and significance statistics, each checked against scipy in the tests.

Correlation (Pearson with p-value and CI, Spearman, MAD), Krippendorff's α, ICC, Welch/Student/
paired t-tests, permutation tests, McNemar, Cohen's d, Bonferroni/Holm, bootstrap CIs, and the
paper-shaped analyses (EmplifAI Table 5: judge vs human; EmPO Table 7: pairwise one-sided tests).
"""

from kyokan.stats.agreement import ICC_FORMS, ICCResult, icc, icc_all, icc_auto, krippendorff_alpha
from kyokan.stats.correlation import (
    CorrelationResult,
    has_variance,
    mean_absolute_difference,
    mean_difference,
    pearson,
    spearman,
)
from kyokan.stats.data import ScoreFile, ScoreGroups, load_scores, metric_names
from kyokan.stats.multiple import CORRECTIONS, adjust, bonferroni, holm
from kyokan.stats.resampling import BootstrapCI, bootstrap_ci, permutation_test
from kyokan.stats.significance import TestResult, cohens_d, mcnemar, paired_t, student_t, welch_t
from kyokan.stats.tables import TESTS, judge_vs_human, marker, pairwise_compare

__all__ = [
    "CORRECTIONS",
    "ICC_FORMS",
    "TESTS",
    "BootstrapCI",
    "CorrelationResult",
    "ICCResult",
    "ScoreFile",
    "ScoreGroups",
    "TestResult",
    "adjust",
    "bonferroni",
    "bootstrap_ci",
    "cohens_d",
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
    "paired_t",
    "pairwise_compare",
    "pearson",
    "permutation_test",
    "spearman",
    "student_t",
    "welch_t",
]
