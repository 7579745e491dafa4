"""Probability-weighted scores (G-Eval, Liu et al. 2023): where the judge's backend returns token
log-probabilities, the score a metric gets is read twice — the integer the judge wrote, and the
expected score ``sum_s s * p(s)`` under the judge's own distribution over the scale points at the
place where it wrote the score.

The place is found in the token stream, not by re-tokenising: a token whose text (stripped) is a
scale point and which follows ``"score":`` (JSON answers, one per metric; in an all-in-one answer the
metric is the last ``"<metric id>": {`` before it), or, in the flat all-in-one form
``{"scores": {"<metric id>": n}}``, follows ``"<metric id>":``. The distribution is the alternatives the backend
returned there (``top_logprobs``), keeping those that are scale points (``"4"`` and ``" 4"`` add
up), renormalised; ``mass`` is the probability they had before renormalising (1.0 under a grammar
that allows only the scale points there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kyokan.models.base import TokenLogprob

_SCORE_KEY = re.compile(r'"score"\s*:\s*$')


@dataclass(frozen=True)
class ScoreDistribution:
    """The judge's probability of each scale point for one metric."""

    probs: dict[int, float]
    #: probability the scale points had before renormalising
    mass: float

    @property
    def expected(self) -> float:
        return sum(s * p for s, p in self.probs.items())

    @property
    def argmax(self) -> int:
        return max(self.probs, key=lambda s: (self.probs[s], -s))

    def to_dict(self) -> dict[str, Any]:
        return {"probs": {str(s): round(p, 6) for s, p in sorted(self.probs.items())}, "mass": round(self.mass, 6),
                "expected": round(self.expected, 4), "argmax": self.argmax}


def score_distributions(tokens: Sequence[TokenLogprob] | None, points: Sequence[int],
                        metric_ids: Sequence[str] | None = None) -> dict[str | None, ScoreDistribution]:
    """Per metric (``None`` for a one-metric answer), the distribution at the last place the answer
    wrote that metric's score; metrics with no such place are absent."""
    if not tokens:
        return {}
    names = {str(p): p for p in points}
    alts = "|".join(re.escape(m) for m in metric_ids) if metric_ids else ""
    key_re = re.compile(r'"(' + alts + r')"\s*:\s*\{') if metric_ids else None
    flat_re = re.compile(r'"(' + alts + r')"\s*:\s*$') if metric_ids else None
    out: dict[str | None, ScoreDistribution] = {}
    prefix = ""
    for t in tokens:
        stripped = t.token.strip()
        lead = t.token[: len(t.token) - len(t.token.lstrip())]
        flat = flat_re.search(prefix + lead) if (flat_re is not None and stripped in names) else None
        if flat is not None:
            d = _distribution(t, names)
            if d is not None:
                out[flat.group(1)] = d
        elif stripped in names and _SCORE_KEY.search(prefix + lead):
            key: str | None = None
            if key_re is not None:
                hits = key_re.findall(prefix)
                key = hits[-1] if hits else None
                if key is None:
                    prefix += t.token
                    continue
            d = _distribution(t, names)
            if d is not None:
                out[key] = d
        prefix += t.token
    return out


def _distribution(t: TokenLogprob, names: dict[str, int]) -> ScoreDistribution | None:
    mass: dict[int, float] = {}
    seen: set[str] = set()
    for alt, lp in t.top:
        if alt in seen:
            continue
        seen.add(alt)
        s = names.get(alt.strip())
        if s is not None and lp > -math.inf:
            mass[s] = mass.get(s, 0.0) + math.exp(lp)
    if t.token not in seen:  # the chosen token, when the top-k left it out
        s = names.get(t.token.strip())
        if s is not None:
            mass[s] = mass.get(s, 0.0) + math.exp(t.logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return ScoreDistribution({s: p / total for s, p in sorted(mass.items())}, min(1.0, total))


def mean_distribution(ds: Sequence[ScoreDistribution]) -> ScoreDistribution | None:
    """The average of several votes' distributions (several samples or judges)."""
    if not ds:
        return None
    if len(ds) == 1:
        return ds[0]
    keys = sorted({s for d in ds for s in d.probs})
    probs = {s: sum(d.probs.get(s, 0.0) for d in ds) / len(ds) for s in keys}
    return ScoreDistribution(probs, sum(d.mass for d in ds) / len(ds))
