"""`kyokan stats compare`: EmPO Table 7 layout with one-sided Welch tests, Cohen's d and Bonferroni, equal to scipy."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from report_util import run_cli, write_csv, write_jsonl

DIMS = ("emotion_understanding", "situational_appropriateness", "contextual_naturalness", "conversational_engagingness")


def _per_item(seed: int) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    rows, vals = [], {}
    for src, mu in (("baseline", 70), ("sft-dpo", 60), ("sft", 56), ("human", 55)):
        vals[src] = {d: np.clip(rng.normal(mu, 15, size=40), 0, 100) for d in DIMS}
        for i in range(40):
            rows.append({"kind": "kyokan.human.item", "version": 1, "id": f"s{i}", "source": src, "n_raters": 3,
                         "means": {d: float(vals[src][d][i]) for d in DIMS}})
    return rows, vals


def test_compare_matches_scipy_welch_one_sided_bonferroni(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(0)
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    code, out, err = run_cli(["stats", "compare", str(f), "--order", "baseline,sft-dpo,sft,human",
                              "-o", str(tmp_path / "cmp"), "--json"], capsys)
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 6 * 4
    for r in results:
        ref = sps.ttest_ind(vals[r["a"]][r["metric"]], vals[r["b"]][r["metric"]], equal_var=False, alternative="greater")
        assert r["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
        assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert r["p_adjusted"] == pytest.approx(min(1.0, ref.pvalue * 24), rel=1e-9)
        a, b = vals[r["a"]][r["metric"]], vals[r["b"]][r["metric"]]
        pooled = math.sqrt((39 * a.var(ddof=1) + 39 * b.var(ddof=1)) / 78)
        assert r["effect_size"] == pytest.approx((a.mean() - b.mean()) / pooled)
    table = list(csv.reader((tmp_path / "cmp" / "empo_table7.csv").open(encoding="utf-8")))
    assert table[0][:2] == ["Output source", "Greater score than"]
    assert [tuple(r[:2]) for r in table[1:]] == list(itertools.combinations(["baseline", "sft-dpo", "sft", "human"], 2))
    assert "Bonferroni".lower() in (tmp_path / "cmp" / "empo_table7.md").read_text(encoding="utf-8").lower()


def test_compare_paired_holm_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(1)
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    code, out, err = run_cli(["stats", "compare", str(f), "--test", "paired", "--correction", "holm",
                              "--metrics", "emotion_understanding", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    ps = [r["pvalue"] for r in res]
    for r in res:
        ref = sps.ttest_rel(vals[r["a"]]["emotion_understanding"], vals[r["b"]]["emotion_understanding"], alternative="greater")
        assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
    order = np.argsort(ps)
    adj = np.maximum.accumulate([min(1, ps[i] * (len(ps) - k)) for k, i in enumerate(order)])
    for k, i in enumerate(order):
        assert res[i]["p_adjusted"] == pytest.approx(adj[k])
    code, _, err = run_cli(["stats", "compare", str(f), "--test", "ttest"], capsys)
    assert code == 2 and "unknown --test" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "kyokan.human.item", "version": 1, "id": "a", "n_raters": 1, "means": {"x": 1}}\n',
                   encoding="utf-8")
    code, _, err = run_cli(["stats", "compare", str(bad)], capsys)
    assert code == 2 and f"{bad}:1: source: Field required" in err and "Traceback" not in err
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_text('{"id": "a", "source": "x", "means": {"x": 1}}\n', encoding="utf-8")
    code, _, err = run_cli(["stats", "compare", str(legacy)], capsys)
    assert code == 2 and f"{legacy}:1: kind: declares no record kind" in err


def test_compare_mcnemar_on_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    a = (rng.random(200) < 0.6).astype(int)
    b = np.where(rng.random(200) < 0.2, 1 - a, a)
    rows = [{"source": s, "id": f"q{i}", "correct": int(v[i])} for s, v in (("sft", a), ("dpo", b)) for i in range(200)]
    f = write_csv(tmp_path / "acc.csv", rows)  # a score table from another tool
    code, out, err = run_cli(["stats", "compare", str(f), "--test", "mcnemar", "--alternative", "two-sided",
                              "--order", "sft,dpo", "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)[0]
    n10, n01 = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
    assert r["pvalue"] == pytest.approx(sps.binomtest(min(n10, n01), n10 + n01).pvalue)
