"""The judge against a real loopback OpenAI-compatible server that injects 429s, 500s, timeouts,
garbage bodies and unreadable answers: every dialogue ends with seven scores or an explicit
unscored mark, and an unreadable answer is never a score."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from judge_util import EMPLIFAI_METRICS, judge_responder, metric_of, record, write_records
from kyokan.judge import AnswerCache, JudgeConfig, get_rubric, judge_file
from kyokan.models import load_model
from kyokan.testing.openai_server import Fault, OpenAIServer


def _model(srv: OpenAIServer, name: str = "judge-x", **kw: Any):  # type: ignore[no-untyped-def]
    opts = {"concurrency": 8, "timeout": 0.5, "max_retries": 10, "backoff_base": 0.01, **kw}
    return load_model(f"openai:{name}", base_url=srv.base_url, **opts)


def _rows(path: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_flaky_server_every_dialogue_scored_and_format_violations_never_called(tmp_path: Path) -> None:
    recs = [record(i) for i in range(12)]
    recs += [record(90, format_ok=False, reply="FV-ONE は送られてはいけない"),
             record(91, reply="FV-TWO も送られない", turns=[{"role": "speaker", "text": "一言だけ"},
                                                          {"role": "listener", "text": "FV-TWO も送られない"}])]
    inp = write_records(tmp_path / "in.jsonl", recs)
    faults = [Fault.status(429, retry_after=0.01), Fault.status(500), Fault.status(503),
              Fault.garbage(), Fault.json({"no": "choices"}), Fault.delay(1.5), Fault.disconnect()]
    with OpenAIServer(responder=judge_responder("json"), fault_rate=0.3, faults=faults, fault_seed=7) as srv:
        res = judge_file(inp, tmp_path / "out.jsonl", [_model(srv)], get_rubric(), JudgeConfig(concurrency=8),
                         cache_path=tmp_path / "c.sqlite")
        sent = "\n".join(json.dumps(r, ensure_ascii=False) for r in srv.requests)
        outcomes = Counter(rec.outcome for rec in srv.log)
    # faults of every kind really happened
    assert outcomes.get("status:429") and outcomes.get("status:500") and outcomes.get("garbage")
    assert outcomes.get("delay") and outcomes.get("disconnect")
    assert res.stats.retries > 0 and res.stats.transport_failures == 0
    rows = _rows(tmp_path / "out.jsonl")
    assert len(rows) == 14
    assert "FV-ONE" not in sent and "FV-TWO" not in sent
    for rid in ("d090", "d091"):
        assert rows[rid]["status"] == "format_violation"
        assert rows[rid]["scores"] == dict.fromkeys(EMPLIFAI_METRICS, 1)
        assert rows[rid]["usage"]["calls"] == 0
    assert "1 exchange(s), expected 2" in rows["d091"]["format_reason"]
    # the same scores as a clean server gives
    with OpenAIServer(responder=judge_responder("json")) as clean:
        judge_file(inp, tmp_path / "clean.jsonl", [_model(clean)], get_rubric(), JudgeConfig())
    ref = _rows(tmp_path / "clean.jsonl")
    for rid, row in rows.items():
        assert row["status"] in ("ok", "format_violation")
        assert all(isinstance(v, int) for v in row["scores"].values())
        assert row["scores"] == ref[rid]["scores"]
        assert row["judge"]["rubric_version"] == get_rubric().version
    assert res.summary["status_counts"]["model-a"] == {"ok": 12, "format_violation": 2}


def test_unparseable_answers_are_reasked_then_unscored_never_one(tmp_path: Path) -> None:
    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(2)] + [record(9, format_ok=False)])
    with OpenAIServer(responder=judge_responder("garbage")) as srv:
        res = judge_file(inp, tmp_path / "out.jsonl", [_model(srv)], get_rubric(), JudgeConfig(max_reasks=2),
                         cache_path=tmp_path / "c.sqlite")
        assert srv.calls == 2 * 7 * 3  # every question asked once and re-asked twice
        reask = srv.requests[-1]["messages"]
    assert [m["role"] for m in reask] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert reask[-2]["role"] == "assistant" and reask[-2]["content"].startswith("I think")
    assert "読み取れませんでした" in reask[-1]["content"]
    rows = _rows(tmp_path / "out.jsonl")
    for rid in ("d000", "d001"):
        r = rows[rid]
        assert r["status"] == "unscored"
        assert r["scores"] == dict.fromkeys(EMPLIFAI_METRICS)
        assert {e["kind"] for e in r["errors"].values()} == {"unparseable"}
        assert all(e["attempts"] == 3 for e in r["errors"].values())
        assert r["usage"]["reasks"] == 14
    cell = res.summary["table"]["model-a"]["general_empathy"]
    # only the format violation counts (as 1); the unparseable ones are unscored, not 1
    assert cell == {"mean": 1.0, "sd": None, "n": 1, "unscored": 2, "format_violations": 1,
                    "expected_mean": 1.0, "expected_sd": None, "expected_n": 1}


def test_one_unreadable_metric_makes_a_partial_row(tmp_path: Path) -> None:
    good = judge_responder("json")

    def responder(req: dict[str, Any]) -> str | Fault:
        return "よく分かりません" if metric_of(req) == "harmlessness" else good(req)

    inp = write_records(tmp_path / "in.jsonl", [record(1)])
    with OpenAIServer(responder=responder) as srv:
        judge_file(inp, tmp_path / "out.jsonl", [_model(srv)], get_rubric(), JudgeConfig(max_reasks=1))
    r = _rows(tmp_path / "out.jsonl")["d001"]
    assert r["status"] == "partial"
    assert r["scores"]["harmlessness"] is None and r["errors"]["harmlessness"]["kind"] == "unparseable"
    assert all(isinstance(r["scores"][m], int) for m in EMPLIFAI_METRICS if m != "harmlessness")


def test_a_reask_can_recover_and_brackets_are_read(tmp_path: Path) -> None:
    inp = write_records(tmp_path / "in.jsonl", [record(1)])
    rub = get_rubric().select(["fluency"])
    with OpenAIServer(responder=judge_responder("brackets"), script=["うーん、難しいですね"]) as srv:
        res = judge_file(inp, tmp_path / "out.jsonl", [_model(srv)], rub, JudgeConfig(concurrency=1))
        assert srv.calls == 2
    r = _rows(tmp_path / "out.jsonl")["d001"]
    assert r["status"] == "ok" and isinstance(r["scores"]["fluency"], int)
    assert r["usage"]["reasks"] == 1 and res.stats.reasks == 1
    assert list(r["scores"]) == ["fluency"]


def test_transport_failure_is_unscored_uncached_and_retried_on_rerun(tmp_path: Path) -> None:
    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(3)])
    cache = tmp_path / "c.sqlite"
    out = tmp_path / "out.jsonl"
    # d001's questions always fail; the others are answered
    good = judge_responder("json")

    def responder(req: dict[str, Any]) -> str | Fault:
        return Fault.status(500) if "1回目" in json.dumps(req, ensure_ascii=False) else good(req)

    with OpenAIServer(responder=responder) as srv:
        res = judge_file(inp, out, [_model(srv, max_retries=1)], get_rubric(), JudgeConfig(), cache_path=cache)
        assert srv.calls == 2 * 7 + 7 * 2  # failing calls: 1 try + 1 retry each
    rows = _rows(out)
    assert rows["d001"]["status"] == "unscored"
    assert {e["kind"] for e in rows["d001"]["errors"].values()} == {"transport"}
    assert "HTTP 500" in rows["d001"]["errors"]["fluency"]["message"]
    assert res.stats.transport_failures == 7
    assert rows["d000"]["status"] == rows["d002"]["status"] == "ok"
    with AnswerCache(cache) as c:
        assert len(c) == 14  # failures are not cached
    # rerun against a healthy server: only d001's seven questions are asked
    with OpenAIServer(responder=good) as srv2:
        res2 = judge_file(inp, out, [_model(srv2)], get_rubric(), JudgeConfig(), cache_path=cache)
        assert srv2.calls == 7
    assert res2.retried == 1 and res2.skipped == 2 and res2.written == 1
    rows2 = _rows(out)
    assert len(rows2) == 3 and all(r["status"] == "ok" for r in rows2.values())
    assert rows2["d000"] == rows["d000"]
