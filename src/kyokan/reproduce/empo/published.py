"""EmPO's published figures (Tables 2, 4, 5, 7 and §4.3 of the paper), shipped as data in
``published.csv``: table, system, metric, the value as printed, its decimals, its significance
marker, and where it is printed."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLES = ("2", "4", "5", "7", "4.3")
SYSTEMS = ("human", "baseline", "lenctl", "sft", "dpo")
#: Table 7's rows in the paper's order: (greater, than)
TABLE7_PAIRS: tuple[tuple[str, str], ...] = (
    ("baseline", "human"), ("baseline", "lenctl"), ("baseline", "sft"), ("baseline", "dpo"),
    ("dpo", "human"), ("dpo", "lenctl"), ("dpo", "sft"), ("lenctl", "human"), ("lenctl", "sft"), ("sft", "human"))
DIMENSIONS = {"dim1": "emotion_understanding", "dim2": "situational_appropriateness",
              "dim3": "contextual_naturalness", "dim4": "conversational_engagingness"}


@dataclass(frozen=True)
class Published:
    table: str
    system: str
    metric: str
    value: float
    printed: str
    digits: int
    marker: str
    source: str

    @property
    def tolerance(self) -> float:
        """Half a unit of the last printed digit: a recomputation rounding to the printed value matches."""
        return 0.5 * 10 ** (-self.digits) + 1e-9


@cache
def published() -> tuple[Published, ...]:
    path = Path(__file__).with_name("published.csv")
    with open(path, encoding="utf-8", newline="") as f:
        return tuple(Published(r["table"], r["system"], r["metric"], float(r["paper"]), r["paper"], int(r["digits"]),
                               r["marker"], r["source"]) for r in csv.DictReader(f))
