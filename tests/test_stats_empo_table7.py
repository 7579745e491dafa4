"""EmPO Table 7 from the real released human ratings (``data/he_data.csv``): a paired t-test per
dimension between output sources with the pooled-SD Cohen's d, as EmPO's notebook
(``notebooks/he_score_effsize.ipynb``) computed it.

On the release sample (30 of the 135 items) every cell is checked against scipy. With the full
release (``KYOKAN_EMPO_RELEASE`` pointing at a checkout of github.com/justtherightsize/empo) the
cells are also compared with the paper's Table 7: all follow from the ratings except the row
"SFT + DPO > baseline-len-control" (the paper prints the reverse comparison's signs), the cell
"SFT + DPO > SFT" for emotion understanding, and the row "SFT > Human targets" (docs/stats.md).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from kyokan import stats as ks
from report_util import run_cli, write_jsonl

DIMS = ("Dim1", "Dim2", "Dim3", "Dim4")
DIM_NAMES = {"Dim1": "Emotion Understanding", "Dim2": "Situational Appropriateness",
             "Dim3": "Contextual Naturalness", "Dim4": "Conversational Engagingness"}
SOURCE_NAMES = {"zephyr_base": "baseline", "zephyr_base_output_limit": "baseline-len-control", "SFT": "SFT",
                "zephyr_dpo": "SFT + DPO", "human_targets": "Human targets"}

#: EmPO (2024) Table 7, transcribed from the paper: (left, right) -> Cohen's d per dimension, markers
PAPER: dict[tuple[str, str], tuple[tuple[float, float, float, float], tuple[str, str, str, str]]] = {
    ("zephyr_base", "human_targets"): ((0.58, 0.88, 0.48, 0.47), ("*", "*", "*", "*")),
    ("zephyr_base", "zephyr_base_output_limit"): ((0.39, 0.42, 0.3, 0.45), ("*", "†", "‡", "*")),
    ("zephyr_base", "SFT"): ((0.5, 0.72, 0.42, 0.53), ("*", "*", "†", "*")),
    ("zephyr_base", "zephyr_dpo"): ((0.38, 0.7, 0.17, 0.3), ("†", "*", "", "†")),
    ("zephyr_dpo", "human_targets"): ((0.18, 0.14, 0.32, 0.18), ("", "", "‡", "‡")),
    ("zephyr_dpo", "zephyr_base_output_limit"): ((-0.04, 0.25, -0.16, -0.17), ("", "*", "", "")),
    ("zephyr_dpo", "SFT"): ((0.2, 0.0, 0.25, 0.22), ("", "", "‡", "‡")),
    ("zephyr_base_output_limit", "human_targets"): ((0.14, 0.41, 0.15, 0.0), ("", "†", "", "")),
    ("zephyr_base_output_limit", "SFT"): ((0.06, 0.26, 0.08, 0.04), ("", "‡", "", "")),
    ("SFT", "human_targets"): ((0.19, 0.01, 0.01, -0.01), ("", "", "", "")),
}
#: printed to 2 decimals (sometimes 1: "0.7" for 0.694); cells that follow are within this of the ratings
ROUNDING = 0.015


def _per_item(path: Path) -> dict[str, dict[str, dict[str, float | None]]]:
    """{source: {ED_index: {dim: mean over its annotators}}} — the notebook's
    ``groupby(["model", "ED_index"]).mean()``."""
    ratings: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            ratings[(row["model"], row["ED_index"])].append(row)
    out: dict[str, dict[str, dict[str, float | None]]] = defaultdict(dict)
    for (model, item), rows in ratings.items():
        out[model][item] = {d: float(np.mean([float(r[d]) for r in rows])) for d in DIMS}
    return dict(out)


def _table7(groups: dict[str, dict[str, dict[str, float | None]]]) -> tuple[ks.Comparison, list[dict]]:
    plan = [ks.Comparison(a, b, "greater") for a, b in PAPER]
    table, _, results = ks.pairwise_compare(groups, DIMS, test="paired", comparisons=plan, effect="pooled",
                                            correction="bonferroni", markers_on="raw", labels={**SOURCE_NAMES, **DIM_NAMES})
    return table, results


@pytest.fixture(scope="module")
def he_groups(empo_release: Path) -> dict[str, dict[str, dict[str, float | None]]]:
    path = empo_release / "data" / "he_data.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return _per_item(path)


def test_table7_cells_equal_scipy_on_released_ratings(he_groups: dict, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert set(he_groups) == set(SOURCE_NAMES)
    table, results = _table7(he_groups)
    assert len(results) == len(PAPER) * 4 and all(r["family_size"] == 40 for r in results)
    for r in results:
        items = sorted(he_groups[r["a"]])
        a = np.array([he_groups[r["a"]][i][r["metric"]] for i in items])
        b = np.array([he_groups[r["b"]][i][r["metric"]] for i in items])
        ref = sps.ttest_rel(a, b, alternative="greater")
        assert r["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
        assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert r["p_adjusted"] == pytest.approx(min(1.0, 40 * ref.pvalue), rel=1e-9)
        # the notebook's cohend(): pooled SD of the two rating columns
        s = np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
        assert r["effect_size"] == r["d_pooled"] == pytest.approx((a.mean() - b.mean()) / s, rel=1e-12)
        d = a - b
        assert r["d_z"] == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)
    assert table.columns == ["Output source", "Greater score than", *DIM_NAMES.values()]
    assert [tuple(row[:2]) for row in table.rows] == [(SOURCE_NAMES[a], SOURCE_NAMES[b]) for a, b in PAPER]
    assert "Paired t-test per metric on the items both sources scored" in table.caption
    assert "explicit hypotheses (baseline > Human targets; baseline > baseline-len-control;" in table.caption

    # the same through the CLI, from per-item rows in the shape of human/per_item.jsonl
    rows = [{"kind": "kyokan.human.item", "version": 1, "id": item, "source": src, "n_raters": 3, "means": means}
            for src, items in he_groups.items() for item, means in items.items()]
    f = write_jsonl(tmp_path / "per_item.jsonl", rows)
    pairs = ",".join(f"{a}>{b}" for a, b in PAPER)
    code, out, err = run_cli(["stats", "compare", str(f), "--test", "paired", "--effect", "pooled", "--pairs", pairs,
                              "--metrics", ",".join(DIMS), "--markers", "raw", "--json"], capsys)
    assert code == 0, err
    cli = json.loads(out)
    assert [(r["a"], r["b"], r["metric"], r["effect_size"], r["pvalue"]) for r in cli] == \
        [(r["a"], r["b"], r["metric"], pytest.approx(r["effect_size"]), pytest.approx(r["pvalue"])) for r in results]


def test_table7_against_the_paper(he_groups: dict) -> None:
    if any(len(v) != 135 for v in he_groups.values()):
        pytest.skip("the release sample holds 30 of the 135 rated items; point KYOKAN_EMPO_RELEASE at a full "
                    "checkout of github.com/justtherightsize/empo to compare with the paper")
    _, results = _table7(he_groups)
    ours = {(r["a"], r["b"], r["metric"]): r["effect_size"] for r in results}
    for (a, b), (cells, _) in PAPER.items():
        for dim, paper in zip(DIMS, cells, strict=True):
            d = ours[(a, b, dim)]
            if (a, b) == ("zephyr_dpo", "zephyr_base_output_limit"):
                # the paper prints the reverse comparison (len-control > SFT+DPO): every sign flipped
                assert np.sign(d) == -np.sign(paper) and abs(-d - paper) <= ROUNDING, dim
            elif (a, b) == ("SFT", "human_targets") or ((a, b), dim) == (("zephyr_dpo", "SFT"), "Dim1"):
                assert abs(d - paper) > 0.02, (a, b, dim)  # does not follow from the ratings
            else:
                assert abs(d - paper) <= ROUNDING, (a, b, dim, d, paper)
