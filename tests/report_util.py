"""Made-up run directories, judge rows, metric outputs and human ratings for the human/stats/report tests."""

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


def judge_rows(source: str, n: int, seed: int, constant: tuple[str, ...] = (), base: float = 3.5,
               with_source: bool = True) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        scores: dict[str, int | None] = {}
        for m in METRICS:
            scores[m] = 5 if m in constant else max(1, min(5, round(base + rng.gauss(0, 0.9))))
        row: dict[str, Any] = {"id": f"d-{i:03d}", "status": "ok", "scores": scores,
                               "judge": {"model": "gemini-2.5-flash", "rubric_version": "emplifai-1", "params": {"temperature": 0}}}
        if with_source:
            row["source_model"] = source  # as the judge engine writes it
            row["response_chars"] = 40 + 7 * (i % 9)
        rows.append(row)
    return rows


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


def provenance(stage: str, **extra: Any) -> dict[str, Any]:
    return {"stage": stage, "seed": 42, "config": {"stage": stage, **extra}}


def make_run(root: Path, capsys: pytest.CaptureFixture[str] | None = None, stages: tuple[str, ...] = (
        "generate", "judge", "eval_responses", "eval_emotions", "human")) -> Path:
    """A run directory with made-up outputs of every stage; ``human/`` is produced by the real
    ``kyokan human build`` → simulated ratings → ``kyokan human import`` path when ``capsys`` is given."""
    from kyokan.human.design import build_emplifai
    from kyokan.human.packets import items_from_file, write_design
    from kyokan.human.ratings import aggregate, attention_report, read_ratings
    from kyokan.io import write_json

    sources = {"gpt-o3": 4.8, "sft-llmjp": 3.0, "llmjp": 1.5}
    if "generate" in stages:
        for s in sources:
            write_jsonl(root / "generate" / f"{s}.jsonl", dialogues(s, 20, seed=len(s)))
        write_json(root / "generate" / "provenance.json", provenance("generate", models=list(sources)))
    if "judge" in stages:
        rows = judge_rows("gpt-o3", 20, 1, constant=("general_empathy", "harmlessness", "sense_of_security"), base=4.6)
        rows += judge_rows("sft-llmjp", 20, 2, base=3.0) + judge_rows("llmjp", 20, 3, base=1.4)
        rows[-1]["status"] = "unscored"
        rows[-1]["scores"] = dict.fromkeys(METRICS)
        rows[-2]["status"] = "format_violation"
        rows[-2]["scores"] = dict.fromkeys(METRICS, 1)
        write_jsonl(root / "judge" / "scores.jsonl", rows)
        write_json(root / "judge" / "summary.json", {"per_source": {}})
        write_json(root / "judge" / "provenance.json", {"seed": 0, "model": "gemini-2.5-flash", "rubric_version": "emplifai-1"})
    if "eval_responses" in stages:
        rng = random.Random(5)
        for s, shift in (("human", 0.0), ("sft-dpo", 0.02), ("baseline", 0.1)):
            per = [{"id": f"d-{i:03d}", "bertscore": {"p": 0.86 + rng.random() * 0.02, "r": 0.85, "f1": 0.86 + rng.random() * 0.02},
                    "nidf": 0.3 + rng.gauss(0, 0.05), "iva": {"intensity_abs": abs(0.28 - shift + rng.gauss(0, 0.05)),
                    "valence_abs": abs(0.14 - shift + rng.gauss(0, 0.03)), "arousal_abs": abs(0.18 - shift + rng.gauss(0, 0.03))},
                    "length": {"chars": 60 + 100 * shift + rng.randint(0, 30)}} for i in range(20)]
            write_jsonl(root / "eval_responses" / s / "per_example.jsonl", per)
            write_json(root / "eval_responses" / s / "summary.json",
                       {"source": s, "tries": {"templates": 19, "span_nodes_ratio": 0.12, "root_children": 9,
                                               "compression_ratio": 0.65, "unique_start_words": 7},
                        "nidf": {"mean": 0.3, "sd": 0.05}})
        write_json(root / "eval_responses" / "provenance.json",
                   {"seed": 0, "lexicons": {"intensity": "NRC Emotion Intensity (emotion-nrc-affect-lex 0.0.3)"}})
    if "eval_emotions" in stages:
        labels = ["joy", "sadness", "fear", "anger"]
        write_json(root / "eval_emotions" / "gpt-o3" / "summary.json",
                   {"model": "gpt-o3", "accuracy": 0.62, "macro_f1": 0.58, "vector_cosine": {"mean": 0.59},
                    "bertscore": {"precision": 0.89, "recall": 0.88, "f1": 0.88},
                    "confusion": {"rows": "gold", "columns": "predicted", "labels": [*labels, "(none)"],
                                  "matrix": [[5, 1, 0, 0, 0], [1, 4, 1, 0, 1], [0, 1, 5, 0, 0], [0, 0, 2, 4, 1]]}})
        write_json(root / "eval_emotions" / "provenance.json", {"seed": 0, "model": "gpt-o3"})
    if "human" in stages:
        key_path = root.parent / f"{root.name}-survey.key.json"
        items = items_from_file(root / "generate" / "gpt-o3.jsonl") if (root / "generate").exists() else \
            items_from_file(write_jsonl(root.parent / "gpt.jsonl", dialogues("gpt-o3", 20)))
        design = build_emplifai(items, seed=42, group_size=10, raters=3)
        write_design(design, root.parent / f"{root.name}-survey", key_path, {"seed": 42})
        key = json.loads(key_path.read_text(encoding="utf-8"))
        ratings = write_csv(root.parent / f"{root.name}-ratings.csv",
                            simulate_ratings(key, 3, {"gpt-o3": 4.5}, 0.8))
        rows2 = read_ratings([ratings], key)
        agg = aggregate(rows2, key, {r for r, d in attention_report(rows2, key).items() if d["failed"]})
        write_jsonl(root / "human" / "per_item.jsonl", agg["per_item"])
        write_json(root / "human" / "summary.json", {"scales": key["scales"], "per_source": agg["per_source"]})
        write_json(root / "human" / "provenance.json", {"seed": 42, "command": "kyokan human import"})
    return root
