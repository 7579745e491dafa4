"""Pairwise mode: both orders are judged; a position-biased judge yields ties, not wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge_util import record, write_records
from kyokan.errors import InputError
from kyokan.judge import JudgeConfig, get_rubric, judge_pairs_file, pair_up
from kyokan.models import load_model
from kyokan.testing.openai_server import OpenAIServer


def _files(tmp_path: Path) -> tuple[Path, Path]:
    a = [record(i, source="sft", reply="あなたの不安はもっともです。" * 3 + f"({i})") for i in range(4)]
    b = [record(i, source="base", reply=f"はい。({i})") for i in range(4)]
    b[3] = record(3, source="base", format_ok=False)
    return write_records(tmp_path / "a.jsonl", a), write_records(tmp_path / "b.jsonl", b)


def _dialogue_texts(req: dict[str, Any]) -> tuple[str, str]:
    user = next(m["content"] for m in req["messages"] if m["role"] == "user")
    a = user.split("# 対話 A\n", 1)[1].split("# 対話 B\n", 1)[0]
    b = user.split("# 対話 B\n", 1)[1].split("\n\n", 1)[0]
    return a, b


def test_position_biased_judge_gives_ties(tmp_path: Path) -> None:
    a, b = _files(tmp_path)
    with OpenAIServer(responder=lambda req: json.dumps({"rationale": "first is better", "winner": "A"})) as srv:
        s = judge_pairs_file(a, b, tmp_path / "p.jsonl", load_model("openai:j", base_url=srv.base_url),
                             get_rubric(), JudgeConfig(), key="situation_id")
        assert srv.calls == 3 * 7 * 2  # pair 3: b broke the format, no call
    c = s["table"]["general_empathy"]
    assert (c["a"], c["b"], c["tie"]) == (1, 0, 3)  # the one 'a' win is the format violation
    assert c["position_consistency"] == 0.0 and c["n_judged"] == 3
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines())}
    assert rows["s000"]["orders"]["fluency"] == {"ab": "a", "ba": "b"}
    assert rows["s003"]["status"] == "format_violation" and rows["s003"]["winners"]["fluency"] == "a"


def test_consistent_judge_wins_in_both_orders(tmp_path: Path) -> None:
    a, b = _files(tmp_path)

    def prefers_longer(req: dict[str, Any]) -> str:
        x, y = _dialogue_texts(req)
        return f"The longer one is warmer. [[{'A' if len(x) > len(y) else 'B'}]]"

    with OpenAIServer(responder=prefers_longer) as srv:
        s = judge_pairs_file(a, b, tmp_path / "p.jsonl", load_model("openai:j", base_url=srv.base_url),
                             get_rubric(), JudgeConfig(all_in_one=False), key="situation_id")
    c = s["table"]["sense_of_security"]
    assert (c["a"], c["b"], c["tie"], c["unscored"]) == (4, 0, 0, 0)
    assert c["a_win_rate"] == 1.0 and c["position_consistency"] == 1.0
    assert s["sources"] == {"a": ["sft"], "b": ["base"]}


def test_pairing_needs_unique_keys(tmp_path: Path) -> None:
    recs = [record(1), {**record(2), "situation_id": "s001"}]
    with pytest.raises(InputError, match="appears more than once"):
        pair_up(recs, recs, "situation_id")
    pairs, counts = pair_up([record(1), record(2)], [record(2), record(3)], "id")
    assert [p["id"] for p in pairs] == ["d002"] and counts == {"paired": 1, "only_a": 1, "only_b": 1}


def test_all_in_one_pairwise_one_call_per_order(tmp_path: Path) -> None:
    a, b = _files(tmp_path)

    def responder(req: dict[str, Any]) -> str:
        x, y = _dialogue_texts(req)
        w = "A" if len(x) > len(y) else "B"
        ids = req["response_format"]["json_schema"]["schema"]["properties"]["winners"]["required"]
        return json.dumps({"winners": {m: {"rationale": "r", "winner": w if m != "fluency" else "A"} for m in ids}})

    with OpenAIServer(responder=responder) as srv:
        s = judge_pairs_file(a, b, tmp_path / "p.jsonl", load_model("openai:j", base_url=srv.base_url),
                             get_rubric(), JudgeConfig(all_in_one=True), key="situation_id")
        assert srv.calls == 3 * 2
    assert s["table"]["consistency"]["a"] == 4 and s["table"]["consistency"]["position_consistency"] == 1.0
    assert s["table"]["fluency"]["tie"] == 3 and s["table"]["fluency"]["position_consistency"] == 0.0
