"""What is compared with what, fixed before the data are looked at, and by which test.

A :class:`Comparison` is one hypothesis between two sources. One-sided hypotheses come only from
the user — a hypothesised order (``A > B > C``) or explicit pairs (``"dpo>sft,sft>base"``) — never
from the observed means; without one the comparisons are two-sided. :data:`TESTS` is the registry
of tests ``kyokan stats compare --test`` offers: a new test is one :class:`TestSpec` passed to
:func:`register_test`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kyokan.stats.base import Alternative, check_alternative
from kyokan.stats.resampling import permutation_test
from kyokan.stats.significance import TestResult, mcnemar, paired_t, student_t, welch_t

ONE_SIDED_NEEDS_DIRECTION = (
    "a one-sided test needs its direction fixed before looking at the data: give the hypothesised order "
    "(order=[A, B, C] or --order A,B,C for A > B > C) or explicit hypotheses (comparisons=parse_comparisons(…) or "
    "--pairs \"A>B,B>C\"); without them the tests are two-sided")


@dataclass(frozen=True)
class Comparison:
    """One hypothesis: ``greater`` — H1: mean(a) > mean(b); ``two-sided`` — H1: mean(a) ≠ mean(b).
    One-sided hypotheses are stored as ``greater`` (a < b is written b > a)."""

    a: str
    b: str
    alternative: Literal["greater", "two-sided"]

    @property
    def hypothesis(self) -> str:
        return f"{self.a} {'>' if self.alternative == 'greater' else '≠'} {self.b}"


def _check_names(names: Sequence[str], what: str) -> None:
    dup = sorted({s for s in names if list(names).count(s) > 1})
    if dup:
        raise ValueError(f"{what} names a source more than once: {', '.join(dup)}")


def comparisons_from_order(order: Sequence[str], alternative: Alternative = "two-sided") -> list[Comparison]:
    """Every pair of ``order`` (earlier first). ``greater``: the order is hypothesised highest first
    (A > B > C gives A > B, A > C, B > C); ``less``: lowest first (A < B < C gives B > A, C > A,
    C > B); ``two-sided``: the order only lays out the table."""
    check_alternative(alternative)
    _check_names(order, "the order")
    out = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if alternative == "greater":
                out.append(Comparison(a, b, "greater"))
            elif alternative == "less":
                out.append(Comparison(b, a, "greater"))
            else:
                out.append(Comparison(a, b, "two-sided"))
    return out


_PAIR = re.compile(r"^\s*(.+?)\s*(!=|>|<)\s*(.+?)\s*$")


def parse_comparisons(text: str) -> list[Comparison]:
    """``"dpo>sft, sft>base, a<b, c!=d"`` → comparisons: ``A>B`` and ``A<B`` are one-sided
    hypotheses, ``A!=B`` a two-sided comparison. Source names cannot contain ``,``, ``<`` or ``>``."""
    out: list[Comparison] = []
    seen: dict[frozenset[str], str] = {}
    for item in (s for s in text.split(",") if s.strip()):
        m = _PAIR.match(item)
        if not m or any(c in m.group(1) + m.group(3) for c in "<>") or "!=" in m.group(1) + m.group(3):
            raise ValueError(f"pair {item.strip()!r}: write A>B (A hypothesised higher), A<B, or A!=B (two-sided)")
        a, op, b = m.groups()
        if a == b:
            raise ValueError(f"pair {item.strip()!r} compares a source with itself")
        key = frozenset((a, b))
        if key in seen:
            raise ValueError(f"pairs {seen[key]!r} and {item.strip()!r} compare the same two sources")
        seen[key] = item.strip()
        out.append(Comparison(a, b, "greater") if op == ">" else
                   Comparison(b, a, "greater") if op == "<" else Comparison(a, b, "two-sided"))
    if not out:
        raise ValueError("no pair given: write e.g. \"dpo>sft,sft>base\"")
    return out


def plan_comparisons(sources: Sequence[str], *, alternative: Alternative = "two-sided",
                     order: Sequence[str] | None = None,
                     comparisons: Sequence[Comparison] | None = None) -> list[Comparison]:
    """The comparisons to run. ``comparisons`` as given (they carry their directions; ``order``
    and a one-sided ``alternative`` are then refused); else every pair of ``order`` under
    ``alternative`` (see :func:`comparisons_from_order`); else — two-sided only — every pair of
    ``sources`` in the order given. A one-sided ``alternative`` without ``order`` raises
    ``ValueError``: the direction is never taken from the data."""
    check_alternative(alternative)
    if comparisons is not None:
        if order is not None:
            raise ValueError("give either an order or explicit pairs, not both")
        if alternative != "two-sided":
            raise ValueError("explicit pairs carry their own directions (A>B, A<B, A!=B); leave the "
                             "alternative at two-sided")
        plan = list(comparisons)
    elif order is not None:
        plan = comparisons_from_order(order, alternative)
    elif alternative != "two-sided":
        raise ValueError(ONE_SIDED_NEEDS_DIRECTION)
    else:
        plan = comparisons_from_order(list(sources), "two-sided")
    unknown = sorted({s for c in plan for s in (c.a, c.b)} - set(sources))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; known: {sorted(sources)}")
    if not plan:
        raise ValueError("nothing to compare: at least two sources are needed")
    return plan


# --- the tests `stats compare` offers --------------------------------------------------------

Runner = Callable[..., TestResult]


@dataclass(frozen=True)
class TestSpec:
    """A test between two sources' per-item scores. ``paired``: items are matched by id and only
    items both sources scored count; ``resampling``: honours ``n_resamples``/``exact``/``seed``;
    ``binary``: 0/1 outcomes (its effect size is the difference in proportions, not a d)."""

    __test__ = False  # not a pytest test class

    name: str
    title: str
    paired: bool
    run: Runner
    resampling: bool = False
    binary: bool = False


def _welch(x: np.ndarray, y: np.ndarray, *, alternative: Alternative, **_: object) -> TestResult:
    return welch_t(x, y, alternative=alternative)


def _student(x: np.ndarray, y: np.ndarray, *, alternative: Alternative, **_: object) -> TestResult:
    return student_t(x, y, alternative=alternative)


def _paired(x: np.ndarray, y: np.ndarray, *, alternative: Alternative, **_: object) -> TestResult:
    return paired_t(x, y, alternative=alternative)


def _perm(x: np.ndarray, y: np.ndarray, *, alternative: Alternative, n_resamples: int = 9999,
          exact: bool | None = None, seed: int = 0) -> TestResult:
    return permutation_test(x, y, alternative=alternative, n_resamples=n_resamples, exact=exact, seed=seed)


def _perm_paired(x: np.ndarray, y: np.ndarray, *, alternative: Alternative, n_resamples: int = 9999,
                 exact: bool | None = None, seed: int = 0) -> TestResult:
    return permutation_test(x, y, paired=True, alternative=alternative, n_resamples=n_resamples, exact=exact,
                            seed=seed)


def _mcnemar(x: np.ndarray, y: np.ndarray, *, alternative: Alternative, **_: object) -> TestResult:
    return mcnemar(x, y, alternative=alternative)


TESTS: dict[str, TestSpec] = {}


def register_test(spec: TestSpec) -> TestSpec:
    TESTS[spec.name] = spec
    return spec


for _spec in (
    TestSpec("welch", "Welch's t-test (unequal variances)", False, _welch),
    TestSpec("student", "Student's t-test (equal variances)", False, _student),
    TestSpec("paired", "paired t-test", True, _paired),
    TestSpec("permutation", "permutation test of the difference of means (labels shuffled)", False, _perm,
             resampling=True),
    TestSpec("permutation-paired", "paired permutation test of the mean difference (signs flipped)", True,
             _perm_paired, resampling=True),
    TestSpec("mcnemar", "McNemar's exact test (binomial on the discordant pairs)", True, _mcnemar, binary=True),
):
    register_test(_spec)

#: the effect size shown in a table cell: ``auto`` = d_z for paired tests, pooled d for independent
#: ones, the difference in proportions for binary tests
EFFECTS = ("auto", "dz", "pooled")
