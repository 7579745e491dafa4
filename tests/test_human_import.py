"""Rating import: clear PATH:LINE: field errors (exit 2, nothing written), attention checks, aggregation,
and judge-vs-human agreement in the layout of EmplifAI Table 5."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from report_util import dialogues, run_cli, simulate_ratings, write_csv, write_jsonl


@pytest.fixture()
def survey(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict]:
    src = write_jsonl(tmp_path / "gpt.jsonl", dialogues("gpt-o3", 30))
    code, _, err = run_cli(["human", "build", str(src), "--style", "emplifai", "--seed", "42", "-o", str(tmp_path / "survey")], capsys)
    assert code == 0, err
    key_path = tmp_path / "survey.key.json"
    return key_path, json.loads(key_path.read_text(encoding="utf-8"))


def test_import_aggregates_and_excludes_failed_attention(tmp_path: Path, survey: tuple[Path, dict],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    key_path, key = survey
    rows = simulate_ratings(key, 1, {"gpt-o3": 4.4}, 0.8, bad_rater="careless")
    ratings = write_csv(tmp_path / "ratings.csv", rows)
    code, out, err = run_cli(["human", "import", str(ratings), "--key", str(key_path), "-o", str(tmp_path / "human"), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["attention"]["excluded"] == ["careless"]
    per_item = [json.loads(x) for x in (tmp_path / "human" / "per_item.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(per_item) == 30 and all(r["source"] == "gpt-o3" for r in per_item)
    # an item's score is the mean of its (kept) raters
    kept = [r for r in rows if r["rater"] != "careless" and not key["items"][r["item"]].get("attention")]
    first = per_item[0]
    mine = [r["fluency"] for r in kept if key["items"][r["item"]]["sample_id"] == first["id"]]
    assert first["n_raters"] == len(mine) and first["means"]["fluency"] == pytest.approx(np.mean(mine))
    ag = summary["agreement"]["fluency"]
    assert "krippendorff_alpha_ordinal" in ag and ag["icc"][0]["form"] == "ICC(1,1)"  # raters nested in groups


def test_import_reports_every_problem_with_line_and_field(tmp_path: Path, survey: tuple[Path, dict],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    key_path, key = survey
    codes = [c for c, v in key["items"].items() if not v.get("attention")]
    good = dict.fromkeys(("content_comprehensibility", "general_empathy", "emotion_specific_empathy",
                           "consistency", "fluency", "harmlessness", "sense_of_security"), 4)
    rows = [{"rater": "w1", "item": codes[0], **good},
            {"rater": "w1", "item": "nope", **good},
            {"rater": "w1", "item": codes[1], **{**good, "fluency": 7}},
            {"rater": "w1", "item": codes[2], **{**good, "harmlessness": "4.5"}},
            {"rater": "", "item": codes[3], **good},
            {"rater": "w1", "item": codes[0], **good},
            {"rater": "w2", "item": codes[4], **{**good, "consistency": "abc"}}]
    path = write_csv(tmp_path / "bad.csv", rows)
    code, _, err = run_cli(["human", "import", str(path), "--key", str(key_path), "-o", str(tmp_path / "out")], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert f"{path}:3: item: unknown item 'nope': not in the survey key" in lines
    assert f"{path}:4: fluency: 7 is outside the 1–5 scale" in lines
    assert f"{path}:5: harmlessness: 4.5 is not a whole number on the 1–5 scale" in lines
    assert f"{path}:6: rater: missing rater id" in lines
    assert f"{path}:7: item: rater 'w1' already rated item '{codes[0]}' at line 2" in lines
    assert f"{path}:8: consistency: not a number: 'abc'" in lines
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    # JSONL with nested scores, a malformed line and a Shift_JIS file
    j = tmp_path / "r.jsonl"
    j.write_text(json.dumps({"rater": "w1", "item": codes[0], "scores": good}) + "\n{oops\n", encoding="utf-8")
    code, _, err = run_cli(["human", "import", str(j), "--key", str(key_path), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and f"{j}:2: malformed JSON" in err
    sj = tmp_path / "sjis.csv"
    with open(sj, "w", encoding="cp932", newline="") as f:
        csv.writer(f).writerows([["rater", "item", *good], ["評価者", codes[0], *good.values()]])
    code, _, err = run_cli(["human", "import", str(sj), "--key", str(key_path), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "Shift_JIS" in err
    code, _, err = run_cli(["human", "import", str(sj), "--key", str(tmp_path / "missing.json"), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "key file not found" in err


def test_agree_reproduces_table5_layout(tmp_path: Path, survey: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    """Real judge rows (kyokan judge against a loopback server) of the rated dialogues; three
    metrics the judge scores 5 everywhere, as in EmplifAI Table 5, get the MAD instead of r."""
    from judge_util import fake_score
    from kyokan.testing.openai_server import OpenAIServer

    key_path, key = survey
    ratings = write_csv(tmp_path / "ratings.csv", simulate_ratings(key, 2, {"gpt-o3": 4.5}, 0.9))
    assert run_cli(["human", "import", str(ratings), "--key", str(key_path), "-o", str(tmp_path / "human")], capsys)[0] == 0
    constant = ("general_empathy", "harmlessness", "sense_of_security")

    def judge(req: dict) -> str:
        ids = re.findall(r"\(id: ([a-z_]+)\)", next(m["content"] for m in req["messages"] if m["role"] == "user"))
        return json.dumps({"scores": {m: {"rationale": "r", "score": 5 if m in constant else fake_score(req, m)}
                                      for m in ids}})

    with OpenAIServer(responder=judge) as srv:
        code, _, err = run_cli(["judge", str(tmp_path / "gpt.jsonl"), "-o", str(tmp_path / "judged.jsonl"), "--model",
                                "gemini-2.5-flash", "--base-url", srv.base_url, "--all-in-one", "--exchanges", "2"], capsys)
        assert code == 0, err
    jr_rows = [json.loads(x) for x in (tmp_path / "judged.jsonl").read_text(encoding="utf-8").splitlines()]
    code, out, err = run_cli(["human", "agree", str(tmp_path / "judged.jsonl"), str(tmp_path / "human"), "-o",
                              str(tmp_path / "agree"), "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)["gpt-o3"]
    assert res["judge"] == "openai:gemini-2.5-flash"
    per_item = {r["id"]: r["means"] for r in map(json.loads, (tmp_path / "human" / "per_item.jsonl").read_text(encoding="utf-8").splitlines())}
    by = {m["metric"]: m for m in res["metrics"]}
    for metric in ("content_comprehensibility", "fluency", "consistency", "emotion_specific_empathy"):
        ids = sorted(per_item)
        j = [next(r["scores"][metric] for r in jr_rows if r["dialogue_id"] == i) for i in ids]
        h = [per_item[i][metric] for i in ids]
        ref = sps.pearsonr(j, h)
        assert by[metric]["method"] == "pearson"
        assert by[metric]["pearson"]["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
        assert by[metric]["pearson"]["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
    for metric in constant:
        assert by[metric]["method"] == "mad"
        h = np.array([per_item[i][metric] for i in sorted(per_item)])
        assert by[metric]["mad"] == pytest.approx(float(np.mean(np.abs(5 - h))))
    md = (tmp_path / "agree" / "emplifai_table5.md").read_text(encoding="utf-8")
    assert "| Pearson |" in md and "| MAD |" in md and "gave every item 5" in md
    rows = list(csv.reader((tmp_path / "agree" / "emplifai_table5.csv").open(encoding="utf-8")))
    assert rows[0][0] == "Judges" and [r[0] for r in rows[1:]] == ["openai:gemini-2.5-flash", "Crowd workers", "Pearson", "MAD"]
    assert rows[3][2] == "–" and rows[4][1] == "–"  # General Empathy: no Pearson; Content: no MAD
