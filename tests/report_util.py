"""Inputs for the human/stats/report tests: dialogue files, simulated rater answers (humans cannot
be run here; their answers go through the real `kyokan human import`), CSV writing and the CLI runner.
Stage outputs come from the real stages (tests/run_util.py), never from this module."""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

METRICS = ("content_comprehensibility", "general_empathy", "emotion_specific_empathy", "consistency",
           "fluency", "harmlessness", "sense_of_security")
EMOTIONS = ("joy", "sadness", "fear", "anger", "gratitude", "nervousness", "relief", "disappointment")


def dialogues(source: str, n: int, seed: int = 0, lang: str = "ja") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        emo = EMOTIONS[i % len(EMOTIONS)]
        reply = "それはつらかったですね。" * rng.randint(1, 4) if lang == "ja" else "That sounds hard. " * rng.randint(1, 4)
        out.append({"id": f"d-{i:03d}", "situation_id": f"s-{i:03d}", "emotion": emo, "lang": lang,
                    "situation": f"通院の帰りに{emo}を感じた。" if lang == "ja" else f"I felt {emo} after the clinic.",
                    "turns": [{"role": "speaker", "text": "今日は検査の結果を聞きに行きました。"},
                              {"role": "listener", "text": f"{reply}（{source}）"},
                              {"role": "speaker", "text": "ありがとうございます。"},
                              {"role": "listener", "text": reply}],
                    "meta": {"generation": {"model": source}}})
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def simulate_ratings(key: dict[str, Any], seed: int, truth: dict[str, float], spread: float,
                     bad_rater: str | None = None) -> list[dict[str, Any]]:
    """One rater per assignment answering around ``truth[source]``; attention items answered as
    instructed, except by ``bad_rater`` (the first assignment's rater)."""
    rng = random.Random(seed)
    scales = key["scales"]
    rows = []
    for a_i, (assignment, codes) in enumerate(sorted(key["assignments"].items())):
        rater = bad_rater if (bad_rater and a_i == 0) else f"w{a_i:03d}"
        for code in codes:
            info = key["items"][code]
            row: dict[str, Any] = {"assignment": assignment, "rater": rater, "item": code}
            for s in scales:
                if info.get("attention"):
                    lo = info["expect"][s["name"]][0]
                    v: float = s["high"] if rater == bad_rater else lo
                elif s["kind"] == "binary":
                    v = 1 if rng.random() < 0.9 else 0
                else:
                    centre = truth[info["source"]] * (s["high"] - s["low"]) / 4 + s["low"] - (s["high"] - s["low"]) / 4
                    v = centre + rng.gauss(0, spread * (s["high"] - s["low"]) / 4)
                    v = max(s["low"], min(s["high"], round(v)))
                row[s["name"]] = v
            rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``kyokan ARGS`` through the real entry point (error handling included) in-process."""
    from kyokan.cli import main

    old = sys.argv
    sys.argv = ["kyokan", *args]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0) if not isinstance(e.code, str) else 1
    finally:
        sys.argv = old
    cap = capsys.readouterr()
    return code, cap.out, cap.err
