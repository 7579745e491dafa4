"""Generation end to end: real loopback server with faults, kill-and-resume through the CLI, a
tiny local model, and the record each row becomes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kyokan.data import read_records, sample_path
from kyokan.generate import GenerateConfig, build_jobs, generate_file, row_seed
from kyokan.models import load_model
from kyokan.testing.openai_server import Fault, OpenAIServer
from models_util import last_user, torch_threads

KYOKAN = [sys.executable, "-m", "kyokan.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "KYOKAN_API_KEY": "",
       "OPENAI_API_KEY": ""}


def dialogue_responder(req: dict[str, Any]) -> str:
    """A well-formed Japanese two-exchange dialogue that names the situation it was asked about."""
    m = re.search(r"状況：(.*)", last_user(req))
    sit = m.group(1)[:12] if m else "?"
    return f"患者：{sit}\n支援者：それは大変でしたね。\n患者：はい。\n支援者：話してくれてありがとう。"


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    yield from torch_threads(1)


@pytest.fixture(scope="module")
def ja() -> list[dict[str, Any]]:
    return list(read_records(sample_path("ja")))


def test_rows_are_format_checked_records_with_provenance(ja: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "gen.jsonl"
    broken = "患者：はい\n支援者：いいえ"
    with OpenAIServer(responder=lambda r: broken if "称賛" in last_user(r) else dialogue_responder(r)) as srv:
        model = load_model("openai:gen-x", base_url=srv.base_url)
        cfg = GenerateConfig(temperature=0.7, seed=11)
        s = generate_file(ja[:8], model, out, cfg)
    got = rows(out)
    assert s.complete and s.written == 8 and [r["id"] for r in got] == [r["id"] for r in ja[:8]]
    r0, r6 = got[0], got[6]
    assert r0["emotion"] == "admiration" and r6["emotion"] == "amusement"
    g = r0["meta"]["generation"]
    assert g["format_ok"] is False and g["reason"] == "2 of 4 turns" and g["raw"] == broken
    assert r0["turns"] == [{"role": "speaker", "text": "はい"}, {"role": "listener", "text": "いいえ"}]
    g6 = r6["meta"]["generation"]
    assert g6["format_ok"] is True and g6["reason"] is None and len(r6["turns"]) == 4
    assert r6["turns"][0]["text"] == ja[6]["situation"][:12]  # the prompt carried this row's situation
    assert g6["model"] == "openai:gen-x" and g6["model_info"]["backend"] == "openai"
    assert g6["params"]["temperature"] == 0.7 and g6["params"]["max_new_tokens"] == 512
    assert g6["seed"] == g6["params"]["seed"] == row_seed(11, ja[6]["id"], 0)
    assert g6["template"] == "emplifai-dialogue-ja@1" and g6["task"] == "dialogue" and g6["exchanges"] == 2
    assert g6["usage"]["completion_tokens"] > 0 and g6["attempts"] == 1
    assert s.format_ok == 2 and s.format_bad == 6  # 6 admiration (称賛) rows: 2 situations × 3 dialogues
    req = srv.requests[0]
    assert req["seed"] in {row_seed(11, r["id"], 0) for r in ja[:8]} and req["temperature"] == 0.7


def test_server_faults_lose_and_duplicate_nothing(ja: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "gen.jsonl"
    faults = [Fault.status(429, retry_after=0.01), Fault.status(500), Fault.status(503), Fault.garbage(),
              Fault.disconnect(), Fault.delay(1.0)]
    with OpenAIServer(responder=dialogue_responder, fault_rate=0.35, faults=faults, fault_seed=3) as srv:
        model = load_model("openai:m", base_url=srv.base_url, concurrency=6, timeout=0.4, max_retries=8,
                           backoff_base=0.01, backoff_max=0.05)
        s = generate_file(ja[:40], model, out, GenerateConfig(), in_flight=6)
        injected = sum(v for k, v in srv.outcomes.items() if k != "ok")
    got = rows(out)
    assert injected >= 8 and s.failed == [] and s.complete
    assert [r["id"] for r in got] == [r["id"] for r in ja[:40]]  # every row once, in input order
    assert all(r["meta"]["generation"]["format_ok"] for r in got)
    assert sum(r["meta"]["generation"]["attempts"] - 1 for r in got) >= 8


def test_failed_rows_are_left_for_the_rerun(ja: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "gen.jsonl"
    victim = ja[2]["situation"][:12]
    flaky = {"on": True}

    def responder(req: dict[str, Any]) -> str | Fault:
        if flaky["on"] and victim in last_user(req):
            return Fault.status(500)
        return dialogue_responder(req)

    with OpenAIServer(responder=responder) as srv:
        model = load_model("openai:m", base_url=srv.base_url, max_retries=1, backoff_base=0.01)
        s = generate_file(ja[:6], model, out, GenerateConfig())
        assert sorted(f["id"] for f in s.failed) == [r["id"] for r in ja[:6] if victim in r["situation"]]
        assert not s.complete and len(rows(out)) == 6 - len(s.failed)
        flaky["on"] = False
        srv.reset_counters()
        s2 = generate_file(ja[:6], model, out, GenerateConfig())
        assert s2.skipped == 6 - len(s.failed) and s2.written == len(s.failed) and srv.calls == len(s.failed)
    assert [r["id"] for r in rows(out)] == [r["id"] for r in ja[:6]] and s2.complete


def test_kill_and_resume_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "gen.jsonl"
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in list(read_records(sample_path("ja")))[:24]),
                   encoding="utf-8")
    with OpenAIServer(responder=dialogue_responder, latency=0.15) as srv:
        cmd = [*KYOKAN, "generate", str(src), "--model", "openai:m", "--base-url", srv.base_url,
               "--concurrency", "2", "-o", str(out), "--json"]
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while time.time() < deadline and (not out.exists() or len(rows(out)) < 6):
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
        first = rows(out)
        assert 6 <= len(first) < 24
        calls_before = srv.calls
        r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["skipped"] == len(first) and summary["written"] == 24 - len(first) and summary["complete"]
        # at most the calls in flight at the kill were repeated
        assert srv.calls - calls_before == 24 - len(first)
    final = rows(out)
    assert len(final) == 24 and len({x["id"] for x in final}) == 24
    # resuming with other settings is refused, without touching the file
    from kyokan.errors import KyokanError

    with OpenAIServer() as srv, pytest.raises(KyokanError, match="other settings"):
        generate_file(list(read_records(src)), load_model("openai:m", base_url=srv.base_url), out,
                      GenerateConfig(temperature=0.5))
    assert rows(out) == final and srv.calls == 0


def test_response_task_with_tiny_local_model(tmp_path: Path) -> None:
    from kyokan.testing import tiny_causal_lm

    ed = list(read_records(sample_path("ed-en")))[:3]
    model = load_model(f"hf:{tiny_causal_lm()}", batch_size=4)
    out = tmp_path / "resp.jsonl"
    cfg = GenerateConfig(task="response", length_control=True, max_new_tokens=8, temperature=1.0, seed=5, turn="all")
    s = generate_file(ed, model, out, cfg)
    got = rows(out)
    assert s.complete and len(got) == 2 * len(ed)  # two listener turns per dialogue
    r = got[1]
    g = r["meta"]["generation"]
    assert r["id"] == f"{ed[0]['id']}@3" and g["response_index"] == 3 and g["reference"] == ed[0]["turns"][3]["text"]
    assert r["turns"][:3] == ed[0]["turns"][:3]
    if g["format_ok"]:
        assert r["turns"][3]["role"] == "listener" and len(r["turns"]) == 4
    assert g["usage"]["completion_tokens"] <= 8 and g["length_control"] is True and g["style"] == "chat"
    assert g["model_info"]["backend"] == "hf" and g["template"] == "empo-response-en@1"
    # a reply cut at max_new_tokens is truncated — its own status, counted beside the rows
    statuses = [x["meta"]["generation"]["status"] for x in got]
    cut = [x for x in got if x["meta"]["generation"]["finish_reason"] == "length"]
    assert cut and all(x["meta"]["generation"]["status"] == "truncated" for x in cut)
    summ = json.loads((tmp_path / "resp.summary.json").read_text(encoding="utf-8"))
    assert summ["kind"] == "kyokan.generation.summary" and summ["rows"] == len(got)
    assert summ["status"] == {k: statuses.count(k) for k in ("ok", "format_violation", "truncated")}
    from kyokan.metrics import evaluate_responses

    flagged = evaluate_responses(out, tmp_path / "m1", metrics=["length"])
    kept = sum(1 for x in got if x["meta"]["generation"]["format_ok"])
    assert flagged.inputs.truncated == len(cut) and flagged.metrics["length"].means["chars"].n == kept
    dropped = evaluate_responses(out, tmp_path / "m2", metrics=["length"], truncated="exclude")
    n_cut_kept = sum(1 for x in cut if x["meta"]["generation"]["format_ok"])
    assert dropped.inputs.excluded_truncated == n_cut_kept
    assert dropped.metrics.get("length") is None or dropped.metrics["length"].means["chars"].n == kept - n_cut_kept
    # same seeds, same rows: a second run into another file reproduces the raw outputs
    out2 = tmp_path / "again.jsonl"
    generate_file(list(reversed(ed)), model, out2, cfg)
    again = {x["id"]: x["meta"]["generation"]["raw"] for x in rows(out2)}
    assert {x["id"]: x["meta"]["generation"]["raw"] for x in got} == again


def test_jobs_and_config_errors(ja: list[dict[str, Any]]) -> None:
    from kyokan.errors import KyokanError

    jobs = build_jobs(ja[:2], GenerateConfig(samples=3, lang="en"))
    assert [j.id for j in jobs] == [f"{ja[0]['id']}~{k}" for k in range(3)] + [f"{ja[1]['id']}~{k}" for k in range(3)]
    assert len({j.params.seed for j in jobs}) == 6
    assert "Emotion: admiration" in jobs[0].messages[-1]["content"]
    with pytest.raises(KyokanError, match="duplicate id"):
        build_jobs([ja[0], ja[0]], GenerateConfig())
    with pytest.raises(KyokanError, match="unknown task"):
        GenerateConfig(task="poem")
