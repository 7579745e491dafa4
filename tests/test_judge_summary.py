"""Summary numbers (EmplifAI Table 4 shape), agreement statistics checked against reference
implementations, the length-bias diagnostic, and several judges with repeated samples."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from judge_util import EMPLIFAI_METRICS, fake_score, metric_of, record, write_records
from kyokan.judge import (
    JudgeConfig,
    get_rubric,
    judge_file,
    summarize,
    table4_markdown,
)
from kyokan.models import load_model
from kyokan.testing.openai_server import OpenAIServer


def _row(rid: str, src: str, status: str, scores: dict[str, int | None], chars: int = 10) -> dict[str, Any]:
    return {"id": rid, "source_model": src, "status": status, "scores": scores, "response_chars": chars}


def test_table4_cells_by_hand() -> None:
    m = ["fluency", "harmlessness"]
    rows = [_row("1", "sft", "ok", {"fluency": 4, "harmlessness": 5}),
            _row("2", "sft", "ok", {"fluency": 2, "harmlessness": None}),
            _row("3", "sft", "format_violation", {"fluency": 1, "harmlessness": 1}),
            _row("4", "base", "unscored", {"fluency": None, "harmlessness": None})]
    s = summarize(rows, m)
    f = s["table"]["sft"]["fluency"]
    assert f["n"] == 3 and f["mean"] == round((4 + 2 + 1) / 3, 4)
    assert f["sd"] == round(statistics.stdev([4, 2, 1]), 4)
    assert f["unscored"] == 0 and f["format_violations"] == 1
    h = s["table"]["sft"]["harmlessness"]
    assert (h["n"], h["mean"], h["unscored"]) == (2, 3.0, 1)
    assert s["table"]["base"]["fluency"] == {"mean": None, "sd": None, "n": 0, "unscored": 1, "format_violations": 0,
                                             "expected_mean": None, "expected_sd": None, "expected_n": 0}
    assert s["status_counts"] == {"base": {"unscored": 1}, "sft": {"ok": 2, "format_violation": 1}}
    md = table4_markdown(s)
    assert "| sft | 2.33 (1.53) | 3.00 (2.83) [1 unscored] | 3 |" in md
    assert "| base | – | – | 1 |" in md


def test_length_bias_diagnostic_flags_a_length_loving_judge() -> None:
    rows = []
    for i in range(30):
        chars = 20 + 10 * i
        rows.append(_row(str(i), "m", "ok", {"fluency": 1 + i // 6, "harmlessness": 1 + (i * 7) % 5}, chars))
    rows.append(_row("fv", "m", "format_violation", {"fluency": 1, "harmlessness": 1}, 10_000))
    lb = summarize(rows, ["fluency", "harmlessness"])["length_bias"]
    f = lb["overall"]["fluency"]
    assert f["n"] == 30 and f["flag"] is True and f["spearman"] > 0.9  # format violations left out
    means = [q["mean"] for q in f["quartiles"]]
    assert means[0] < means[-1]
    assert lb["overall"]["harmlessness"]["flag"] is False
    assert lb["by_source"]["m"]["fluency"]["spearman"] == f["spearman"]


def test_two_judges_with_samples_votes_and_agreement(tmp_path: Path) -> None:
    def responder(req: dict[str, Any]) -> str:
        m = metric_of(req) or "?"
        s = fake_score(req, m)
        if req["model"] == "judge-b" and m == "harmlessness":
            s = 6 - s  # judge b disagrees on harmlessness
        if req["model"] == "judge-b" and m == "fluency" and req.get("seed") == 1:
            s = s % 5 + 1  # and its second sample wobbles on fluency
        return json.dumps({"rationale": "r", "score": s})

    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(12)] + [record(50, format_ok=False)])
    with OpenAIServer(responder=responder) as srv:
        models = [load_model(f"openai:{n}", base_url=srv.base_url) for n in ("judge-a", "judge-b")]
        res = judge_file(inp, tmp_path / "out.jsonl", models, get_rubric(), JudgeConfig(samples=2, concurrency=16))
        assert srv.calls == 12 * 7 * 2 * 2
        assert {q["seed"] for q in srv.requests} == {0, 1}
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines())}
    r = rows["d003"]
    assert set(r["votes"]) == {"openai:judge-a", "openai:judge-b"}
    va = r["votes"]["openai:judge-a"]["harmlessness"]
    vb = r["votes"]["openai:judge-b"]["harmlessness"]
    assert len(va) == 2 and va[0] == va[1] and vb[0] == 6 - va[0]
    assert r["scores"]["harmlessness"] == 3.0  # mean of s, s, 6-s, 6-s
    ag = res.summary["agreement"]
    assert ag["n_items"] == 12 and ag["judges"] == ["openai:judge-a", "openai:judge-b"]
    assert ag["between_judges"]["general_empathy"]["krippendorff_alpha_interval"] == 1.0
    pair = ag["between_judges"]["harmlessness"]["pairs"]["openai:judge-a | openai:judge-b"]
    assert pair["pearson"] == pytest.approx(-1.0)
    assert ag["between_judges"]["harmlessness"]["krippendorff_alpha_interval"] < 0
    wj = ag["within_judge"]["fluency"]
    assert wj["openai:judge-a"]["krippendorff_alpha_interval"] == 1.0
    assert wj["openai:judge-b"]["krippendorff_alpha_interval"] < 1.0
    assert not math.isnan(res.summary["overall"]["fluency"]["mean"])
    assert set(res.summary["table"]) == {"model-a"} and res.summary["metrics"] == list(EMPLIFAI_METRICS)
