"""`kyokan stats compare` and `kyokan human agree` read what the stages wrote, without conversion:
eval responses' per-example rows, human per-item means and the judge's rows — checked against scipy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_compare_per_example_rows_of_eval_responses(real_run: Path, cli) -> None:  # type: ignore[no-untyped-def]
    a = real_run / "eval_responses" / "openai_sys-a" / "per_example.jsonl"
    b = real_run / "eval_responses" / "openai_sys-b" / "per_example.jsonl"
    r = cli("stats", "compare", a, b, "--metrics", "length.chars,nidf.nidf", "--test", "welch",
            "--alternative", "two-sided", "--order", "openai:sys-a,openai:sys-b", "--json")
    assert r.code == 0, r.stderr
    for res in json.loads(r.stdout):
        m, fld = res["metric"].split(".")
        x = [row["values"][m][fld] for row in _rows(a)]
        y = [row["values"][m][fld] for row in _rows(b)]
        ref = sps.ttest_ind(x, y, equal_var=False)
        assert res["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
        assert res["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_compare_human_items_and_judge_rows(real_run: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items = real_run / "human" / "ratings" / "per_item.jsonl"
    r = cli("stats", "compare", items, "--metrics", "fluency", "--test", "welch", "--alternative", "two-sided",
            "--order", "openai:sys-a,openai:sys-b", "-o", tmp_path / "cmp", "--json")
    assert r.code == 0, r.stderr
    rows = _rows(items)
    x = [i["means"]["fluency"] for i in rows if i["source"] == "openai:sys-a"]
    y = [i["means"]["fluency"] for i in rows if i["source"] == "openai:sys-b"]
    assert json.loads(r.stdout)[0]["pvalue"] == pytest.approx(sps.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-9)
    out = json.loads((tmp_path / "cmp" / "compare.json").read_text(encoding="utf-8"))
    assert out["kind"] == "kyokan.stats.compare" and out["inputs"][0]["kind"] == "kyokan.human.item"
    judged = real_run / "judge" / "judged.jsonl"
    r = cli("stats", "compare", judged, "--metrics", "fluency", "--test", "paired", "--alternative", "two-sided",
            "--order", "openai:sys-a,openai:sys-b", "--json")
    assert r.code == 0, r.stderr
    jr = [j for j in _rows(judged) if j["status"] != "unscored"]
    by = {(j["source_model"], j["dialogue_id"]): j["scores"]["fluency"] for j in jr}
    ids = sorted({d for s, d in by if s == "openai:sys-a"} & {d for s, d in by if s == "openai:sys-b"})
    ref = sps.ttest_rel([by[("openai:sys-a", i)] for i in ids], [by[("openai:sys-b", i)] for i in ids])
    assert json.loads(r.stdout)[0]["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
    # unlike kinds are refused, naming them
    r = cli("stats", "compare", judged, items, "--json")
    assert r.code == 2 and "like with like" in r.stderr


def test_agree_pairs_by_source_and_dialogue(real_run: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    judged = real_run / "judge" / "judged.jsonl"
    human = real_run / "human" / "ratings"
    r = cli("human", "agree", judged, human, "-o", tmp_path / "agree", "--json")
    assert r.code == 0, r.stderr
    res = json.loads(r.stdout)
    assert sorted(res) == ["openai:sys-a", "openai:sys-b"]
    items = _rows(human / "per_item.jsonl")
    jr = _rows(judged)
    for src in res:
        by = {m["metric"]: m for m in res[src]["metrics"]}
        hum = {i["id"]: i["means"] for i in items if i["source"] == src}
        jud = {j["dialogue_id"]: j["scores"] for j in jr if j["source_model"] == src and j["status"] != "unscored"}
        ids = sorted(hum.keys() & jud.keys())
        assert res[src]["items"] == len(ids) > 3
        for metric in ("fluency", "consistency"):
            x, y = [jud[i][metric] for i in ids], [hum[i][metric] for i in ids]
            if by[metric]["method"] == "pearson":
                assert by[metric]["pearson"]["statistic"] == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-12)
            else:
                assert by[metric]["mad"] == pytest.approx(float(np.mean(np.abs(np.array(x) - np.array(y)))))


def test_agree_refuses_other_sources(real_run: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Judge rows of one system with human ratings of another: refused, both named, unless the
    user says which go together."""
    only_a = tmp_path / "judged_a.jsonl"
    only_a.write_text("".join(json.dumps(j, ensure_ascii=False) + "\n" for j in _rows(real_run / "judge" / "judged.jsonl")
                              if j["source_model"] == "openai:sys-a"), encoding="utf-8")
    human = tmp_path / "human"
    shutil.copytree(real_run / "human" / "ratings", human)
    items = [i for i in _rows(human / "per_item.jsonl") if i["source"] == "openai:sys-b"]
    (human / "per_item.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    r = cli("human", "agree", only_a, human, "-o", tmp_path / "agree")
    assert r.code == 2 and "openai:sys-a" in r.stderr and "openai:sys-b" in r.stderr and "--source" in r.stderr
    r = cli("human", "agree", only_a, human, "-o", tmp_path / "agree", "--source", "openai:sys-a=openai:sys-b")
    assert r.code == 0, r.stderr
