"""`kyokan report`: self-contained HTML, paper-shaped tables also as CSV/Markdown, missing stages named."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from report_util import dialogues, make_run, run_cli, simulate_ratings, write_csv, write_jsonl


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from kyokan.report import build_report

    root = tmp_path_factory.mktemp("report")
    run = make_run(root / "run")
    return root, build_report(run, root / "report.html")


def test_report_tables_and_self_contained(full_report: tuple[Path, dict]) -> None:
    root, res = full_report
    html = (root / "report.html").read_text(encoding="utf-8")
    for key in ("emplifai_table2", "emplifai_table4", "emplifai_table5", "empo_table2", "empo_table4", "empo_table5"):
        assert key in res["built"]
        assert (root / "report_tables" / f"{key}.csv").exists() and (root / "report_tables" / f"{key}.md").exists()
        assert f'id="t-{key}"' in html
    # nothing loaded from outside the file
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "<script" not in html and "<link" not in html
    assert html.count("data:image/png;base64,") >= 4
    # missing stages are named, not errors
    assert "general" in res["missing"]["EmPO Table 3 — language understanding"]
    assert "Not available" in html
    # provenance: lexicon licence, judge model, Japanese text
    assert "research and non-commercial use only" in html
    assert "gemini-2.5-flash" in html and "Noto Sans CJK JP" in html
    t4 = list(csv.reader((root / "report_tables" / "emplifai_table4.csv").open(encoding="utf-8")))
    assert t4[0][0] == "Source of dialogues" and {r[0] for r in t4[1:]} == {"gpt-o3", "sft-llmjp", "llmjp"}
    llmjp = next(r for r in t4 if r[0] == "llmjp")
    assert llmjp[1] == "19"  # the unscored row is excluded, not counted as 1
    t5 = (root / "report_tables" / "emplifai_table5.md").read_text(encoding="utf-8")
    assert "MAD instead of Pearson" in t5


def test_report_on_partial_run_and_empo_table7(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run", stages=("judge",))
    # an EmPO-style human evaluation of three sources, through the real CLI path
    files = [f"{s}={write_jsonl(tmp_path / f'{s}.jsonl', dialogues(s, 24, lang='en'))}" for s in ("baseline", "dpo", "human")]
    code, _, err = run_cli(["human", "build", *files, "--style", "empo", "--seed", "5", "--n-samples", "15",
                            "--min-per-emotion", "1", "-o", str(tmp_path / "survey")], capsys)
    assert code == 0, err
    key = json.loads((tmp_path / "survey.key.json").read_text(encoding="utf-8"))
    ratings = write_csv(tmp_path / "ratings.csv", simulate_ratings(key, 1, {"baseline": 4.2, "dpo": 3.4, "human": 3.0}, 0.6))
    code, _, err = run_cli(["human", "import", str(ratings), "--key", str(tmp_path / "survey.key.json"), "-o", str(run / "human")], capsys)
    assert code == 0, err
    code, out, err = run_cli(["report", str(run), "-o", str(tmp_path / "r.html"), "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["stages"]["eval_emotions"] is None and "eval_emotions" in res["missing"]["EmplifAI Table 2 — emotion prediction"]
    assert "empo_table7" in res["built"]
    t7 = list(csv.reader((tmp_path / "r_tables" / "empo_table7.csv").open(encoding="utf-8")))
    assert t7[0][:2] == ["Output source", "Greater score than"] and t7[1][0] == "baseline"
    assert "Emotion Understanding" in t7[0]
    assert "share no metric" in res["missing"]["EmplifAI Table 5 — judge vs human"] or \
        "no source rated by both" in res["missing"]["EmplifAI Table 5 — judge vs human"]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "missing — not part of this run" in html
    code, _, err = run_cli(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "x.html")], capsys)
    assert code == 2 and "not a run directory" in err
