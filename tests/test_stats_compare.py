"""`kyokan stats compare` and ``pairwise_compare``: two-sided unless a direction is given in
advance, the direction never read from the data, captions that say what was tested, both effect
sizes, resamples — every number equal to scipy."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from kyokan import stats as ks
from report_util import run_cli, write_csv, write_jsonl

DIMS = ("emotion_understanding", "situational_appropriateness", "contextual_naturalness", "conversational_engagingness")
SOURCES = ("baseline", "sft-dpo", "sft", "human")


def _per_item(seed: int, n: int = 40) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    rows, vals = [], {}
    for src, mu in zip(SOURCES, (70, 60, 56, 55), strict=True):
        vals[src] = {d: np.clip(rng.normal(mu, 15, size=n), 0, 100) for d in DIMS}
        for i in range(n):
            rows.append({"kind": "kyokan.human.item", "version": 1, "id": f"s{i}", "source": src, "n_raters": 3,
                         "means": {d: float(vals[src][d][i]) for d in DIMS}})
    return rows, vals


def _groups(vals: dict[str, dict[str, np.ndarray]], sources: tuple[str, ...] = SOURCES) -> dict:
    n = len(next(iter(vals.values()))[DIMS[0]])
    return {s: {f"s{i}": {d: float(vals[s][d][i]) for d in DIMS} for i in range(n)} for s in sources}


def test_one_sided_welch_with_order_matches_scipy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(0)
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    code, out, err = run_cli(["stats", "compare", str(f), "--alternative", "greater", "--order", "baseline,sft-dpo,sft,human",
                              "-o", str(tmp_path / "cmp"), "--json"], capsys)
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 6 * 4
    for r in results:
        a, b = vals[r["a"]][r["metric"]], vals[r["b"]][r["metric"]]
        ref = sps.ttest_ind(a, b, equal_var=False, alternative="greater")
        assert r["alternative"] == "greater" and r["hypothesis"] == f"{r['a']} > {r['b']}"
        assert r["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
        assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert r["p_adjusted"] == pytest.approx(min(1.0, ref.pvalue * 24), rel=1e-9)
        assert r["family_size"] == 24
        pooled = math.sqrt((39 * a.var(ddof=1) + 39 * b.var(ddof=1)) / 78)
        assert r["effect_size"] == r["d_pooled"] == pytest.approx((a.mean() - b.mean()) / pooled)
        assert r["d_z"] is None  # independent samples have no d_z
    table = list(csv.reader((tmp_path / "cmp" / "empo_table7.csv").open(encoding="utf-8")))
    assert table[0][:2] == ["Output source", "Greater score than"]
    assert [tuple(r[:2]) for r in table[1:]] == list(itertools.combinations(SOURCES, 2))
    md = (tmp_path / "cmp" / "empo_table7.md").read_text(encoding="utf-8")
    for words in ("Welch's t-test", "One-sided: H1 = the left source is rated higher than the right",
                  "fixed before looking at the data by the hypothesised order baseline > sft-dpo > sft > human",
                  "Bonferroni correction over the family of 24 tests (6 comparisons × 4 metrics)",
                  "Cohen's d (pooled SD)"):
        assert words in md, words
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text(encoding="utf-8"))
    assert saved["hypotheses"][0] == "baseline > sft-dpo" and saved["caption"] in md
    assert saved["provenance"]["config"]["alternative"] == "greater"


def test_default_is_two_sided_in_input_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(2)
    rows = [r for r in rows if r["source"] in ("human", "baseline")]  # file order: baseline, human
    f = write_jsonl(tmp_path / "per_item.jsonl", rows[::-1])  # human's rows come first now
    code, out, err = run_cli(["stats", "compare", str(f), "--metrics", "emotion_understanding",
                              "-o", str(tmp_path / "cmp"), "--json"], capsys)
    assert code == 0, err
    (r,) = json.loads(out)
    # the first source read comes first, although baseline has the higher mean: nothing is sorted by the data
    assert (r["a"], r["b"], r["alternative"], r["hypothesis"]) == ("human", "baseline", "two-sided", "human ≠ baseline")
    ref = sps.ttest_ind(vals["human"]["emotion_understanding"], vals["baseline"]["emotion_understanding"], equal_var=False)
    assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9) and r["effect_size"] < 0
    md = (tmp_path / "cmp" / "empo_table7.md").read_text(encoding="utf-8")
    assert "| Output source | Compared with |" in md and "Two-sided: H1 = the two sources' means differ." in md


def test_one_sided_needs_a_direction_given_in_advance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(3)
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    code, _, err = run_cli(["stats", "compare", str(f), "--alternative", "greater"], capsys)
    assert code == 2 and "needs its direction fixed before looking at the data" in err and "Traceback" not in err
    code, _, err = run_cli(["stats", "compare", str(f), "--pairs", "sft>human", "--alternative", "greater"], capsys)
    assert code == 2 and "--pairs carries each direction" in err
    code, _, err = run_cli(["stats", "compare", str(f), "--pairs", "sft>human", "--order", "sft,human"], capsys)
    assert code == 2 and "either --order or --pairs" in err
    code, _, err = run_cli(["stats", "compare", str(f), "--pairs", "sft human"], capsys)
    assert code == 2 and "--pairs: pair 'sft human': write A>B" in err
    code, _, err = run_cli(["stats", "compare", str(f), "--pairs", "sft>nobody"], capsys)
    assert code == 2 and "unknown sources ['nobody']" in err
    with pytest.raises(ValueError, match="needs its direction fixed"):
        ks.pairwise_compare(_groups(vals), list(DIMS), alternative="greater")


def test_hypotheses_do_not_depend_on_the_data() -> None:
    # the same plan whatever the scores: swap which source is better and nothing about what is
    # tested changes, only the numbers
    _, vals = _per_item(4)
    flipped = {"baseline": vals["human"], "sft-dpo": vals["sft"], "sft": vals["sft-dpo"], "human": vals["baseline"]}
    for order, alt in ((None, "two-sided"), (list(SOURCES), "greater"), (list(SOURCES), "less")):
        plans = []
        for v in (vals, flipped):
            _, _, res = ks.pairwise_compare(_groups(v), list(DIMS), order=order, alternative=alt)  # type: ignore[arg-type]
            plans.append([(r["a"], r["b"], r["alternative"]) for r in res])
        assert plans[0] == plans[1]
    less = ks.comparisons_from_order(["a", "b", "c"], "less")
    assert [c.hypothesis for c in less] == ["b > a", "c > a", "c > b"]
    pairs = ks.parse_comparisons("dpo>sft, base<sft , x!=y")
    assert [c.hypothesis for c in pairs] == ["dpo > sft", "sft > base", "x ≠ y"]
    with pytest.raises(ValueError, match="compare the same two sources"):
        ks.parse_comparisons("a>b,b>a")


def test_pairs_mix_one_and_two_sided_and_mcnemar_one_sided(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(5)
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    code, out, err = run_cli(["stats", "compare", str(f), "--pairs", "human<baseline,sft!=sft-dpo", "--metrics",
                              "emotion_understanding", "-o", str(tmp_path / "cmp"), "--json"], capsys)
    assert code == 0, err
    r1, r2 = json.loads(out)
    assert (r1["a"], r1["b"], r1["alternative"]) == ("baseline", "human", "greater")
    assert r1["pvalue"] == pytest.approx(sps.ttest_ind(vals["baseline"]["emotion_understanding"],
                                                       vals["human"]["emotion_understanding"], equal_var=False,
                                                       alternative="greater").pvalue, rel=1e-9)
    assert r2["alternative"] == "two-sided"
    md = (tmp_path / "cmp" / "empo_table7.md").read_text(encoding="utf-8")
    assert "| Output source | Compared with | H1 |" in md and "explicit hypotheses (baseline > human; sft ≠ sft-dpo)" in md

    rng = np.random.default_rng(4)
    a = (rng.random(200) < 0.6).astype(int)
    b = np.where(rng.random(200) < 0.2, 1 - a, a)
    acc = write_csv(tmp_path / "acc.csv", [{"source": s, "id": f"q{i}", "correct": int(v[i])}  # another tool's table
                                           for s, v in (("sft", a), ("dpo", b)) for i in range(200)])
    n10, n01 = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
    code, out, err = run_cli(["stats", "compare", str(acc), "--test", "mcnemar", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)[0]["pvalue"] == pytest.approx(sps.binomtest(n10, n10 + n01).pvalue)
    code, out, err = run_cli(["stats", "compare", str(acc), "--test", "mcnemar", "--pairs", "dpo>sft", "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)[0]
    assert r["alternative"] == "greater" and r["statistic"] == n01
    assert r["pvalue"] == pytest.approx(sps.binomtest(n01, n10 + n01, alternative="greater").pvalue, rel=1e-12)
    code, _, err = run_cli(["stats", "compare", str(acc), "--test", "mcnemar", "--effect", "dz"], capsys)
    assert code == 2 and "difference in proportions" in err


def test_paired_reports_both_effect_sizes_and_effect_chooses_the_cell(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(1)
    rows = [r for r in rows if not (r["source"] == "sft" and r["id"] == "s0")]  # one item without a partner
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    cells = {}
    for effect in ("dz", "pooled", "auto"):
        code, out, err = run_cli(["stats", "compare", str(f), "--test", "paired", "--effect", effect, "--alternative",
                                  "greater", "--order", ",".join(SOURCES), "--correction", "holm",
                                  "-o", str(tmp_path / effect), "--json"], capsys)
        assert code == 0, err
        res = json.loads(out)
        for r in res:
            a, b = vals[r["a"]][r["metric"]], vals[r["b"]][r["metric"]]
            if "sft" in (r["a"], r["b"]):
                a, b = a[1:], b[1:]
                assert r["unpaired"] == 1 and r["n_a"] == 39
            ref = sps.ttest_rel(a, b, alternative="greater")
            assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
            d = a - b
            assert r["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
            pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
            assert r["d_pooled"] == pytest.approx((a.mean() - b.mean()) / pooled)
            assert r["effect_size"] == r["d_z" if effect != "pooled" else "d_pooled"]
        cells[effect] = list(csv.reader((tmp_path / effect / "empo_table7.csv").open(encoding="utf-8")))
        ps = [r["pvalue"] for r in res]
        order = np.argsort(ps)
        adj = np.maximum.accumulate([min(1, ps[i] * (len(ps) - k)) for k, i in enumerate(order)])
        for k, i in enumerate(order):
            assert res[i]["p_adjusted"] == pytest.approx(adj[k])
    assert cells["auto"] == cells["dz"] != cells["pooled"]
    md = (tmp_path / "pooled" / "empo_table7.md").read_text(encoding="utf-8")
    assert "Cells: Cohen's d (pooled SD), left − right." in md and "Holm (step-down)" in md
    assert "without a partner in the other source were left out" in md
    assert "Cohen's d_z (mean difference / SD of differences)" in (tmp_path / "dz" / "empo_table7.md").read_text(encoding="utf-8")
    code, _, err = run_cli(["stats", "compare", str(f), "--effect", "dz"], capsys)
    assert code == 2 and "d_z needs paired data" in err


def test_permutation_resamples_seed_and_the_unreachable_marker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, vals = _per_item(6, n=30)
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    args = ["stats", "compare", str(f), "--test", "permutation-paired", "--metrics", "emotion_understanding",
            "--alternative", "greater", "--order", "baseline,human", "--resamples", "999", "--seed", "3"]
    code, out, err = run_cli([*args, "-o", str(tmp_path / "a"), "--json"], capsys)
    assert code == 0, err
    (r,) = json.loads(out)
    assert (r["n_resamples"], r["exact"], r["seed"], r["min_pvalue"]) == (999, False, 3, pytest.approx(1 / 1000))
    d = vals["baseline"]["emotion_understanding"] - vals["human"]["emotion_understanding"]
    ref = sps.permutation_test((d,), np.mean, permutation_type="samples", alternative="greater", n_resamples=999, rng=3)
    assert abs(r["pvalue"] - ref.pvalue) < 0.03
    code, out2, _ = run_cli([*args, "--json"], capsys)
    assert json.loads(out2) == [r]  # deterministic by seed
    md = (tmp_path / "a" / "empo_table7.md").read_text(encoding="utf-8")
    assert "999 random rearrangements per test (numpy PCG64, seed 3); the smallest attainable p is 1.000e-03." in md
    assert "* (p < 1e-05) cannot be reached by any cell with these resamples; that needs at least 100,000 " \
           "resamples (--resamples)." in md
    assert "† (p < 0.001) cannot be reached" in md
    # exact enumeration on request: 2^12 sign flips
    small = write_jsonl(tmp_path / "small.jsonl", [x for x in rows if int(x["id"][1:]) < 12])
    code, out, err = run_cli(["stats", "compare", str(small), "--test", "permutation-paired", "--metrics",
                              "emotion_understanding", "--order", "baseline,human", "--exact", "--json"], capsys)
    assert code == 0, err
    (r,) = json.loads(out)
    ref = sps.permutation_test((d[:12],), np.mean, permutation_type="samples", n_resamples=2 ** 12)
    assert r["exact"] is True and r["n_resamples"] == 4096 and r["pvalue"] == pytest.approx(ref.pvalue, abs=1e-12)
    code, _, err = run_cli(["stats", "compare", str(f), "--resamples", "100"], capsys)
    assert code == 2 and "apply to permutation tests" in err


def test_bad_input_and_unknown_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, _ = _per_item(1)
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    code, _, err = run_cli(["stats", "compare", str(f), "--test", "ttest"], capsys)
    assert code == 2 and "unknown --test" in err
    code, _, err = run_cli(["stats", "compare", str(f), "--effect", "hedges"], capsys)
    assert code == 2 and "--effect must be one of auto, dz, pooled" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "kyokan.human.item", "version": 1, "id": "a", "n_raters": 1, "means": {"x": 1}}\n',
                   encoding="utf-8")
    code, _, err = run_cli(["stats", "compare", str(bad)], capsys)
    assert code == 2 and f"{bad}:1: source: Field required" in err and "Traceback" not in err
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_text('{"id": "a", "source": "x", "means": {"x": 1}}\n', encoding="utf-8")
    code, _, err = run_cli(["stats", "compare", str(legacy)], capsys)
    assert code == 2 and f"{legacy}:1: kind: declares no record kind" in err

