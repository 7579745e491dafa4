"""`kyokan prefs build|check` end to end, and the model strategy against a real loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kyokan.data import load_dialogues, sample_path
from kyokan.prefs import build_pairs, check_rows
from kyokan.taxonomy import get_taxonomy

KYOKAN = [sys.executable, "-m", "kyokan.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KYOKAN, *args], capture_output=True, text=True, env=ENV, timeout=120)


def test_build_is_byte_identical_and_checks(tmp_path: Path) -> None:
    data = str(sample_path("ja"))
    a, b = tmp_path / "a", tmp_path / "b"
    r = run("prefs", "build", data, "--epochs", "3", "--seed", "13", "-o", str(a), "--system", "You are kind.")
    assert r.returncode == 0, r.stderr
    assert run("prefs", "build", data, "--epochs", "3", "--seed", "13", "-o", str(b), "--system", "You are kind.").returncode == 0
    for k in range(3):
        assert (a / f"epoch-{k}.jsonl").read_bytes() == (b / f"epoch-{k}.jsonl").read_bytes()
    row = json.loads((a / "epoch-1.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {"prompt", "chosen", "rejected", "meta"}
    assert row["prompt"][0] == {"role": "system", "content": "You are kind."}
    assert {"dialogue_id", "emotion", "rejected_dialogue_id", "rejected_emotion", "epoch", "seed"} <= set(row["meta"])
    assert row["meta"]["epoch"] == 1 and row["meta"]["seed"] == 13
    # rebuilding one epoch alone gives the same bytes
    c = tmp_path / "c"
    assert run("prefs", "build", data, "--epochs", "3", "--seed", "13", "--epoch", "2", "-o", str(c),
               "--system", "You are kind.").returncode == 0
    assert (c / "epoch-2.jsonl").read_bytes() == (a / "epoch-2.jsonl").read_bytes()
    assert not (c / "epoch-0.jsonl").exists()
    ok = run("prefs", "check", str(a), "--data", data, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["problems"] == 0
    # tamper with one rejected reply: check names the file, line and field, exit 2
    lines = (a / "epoch-0.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[4])
    bad["rejected"][0]["content"] = "tampered"
    lines[4] = json.dumps(bad, ensure_ascii=False)
    (a / "epoch-0.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run("prefs", "check", str(a), "--data", data)
    assert r.returncode == 2
    assert "epoch-0.jsonl:5: rejected:" in r.stderr and "Traceback" not in r.stderr


def test_bad_input_is_a_clean_error(tmp_path: Path) -> None:
    r = run("prefs", "build", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run("prefs", "build", str(sample_path("ja")), "-o", str(tmp_path / "o"), "--strategy", "nope")
    assert r.returncode == 2 and "unknown pair strategy" in r.stderr


def test_model_strategy_over_http(tmp_path: Path) -> None:
    pytest.importorskip("httpx")
    from kyokan.testing.openai_server import Fault, OpenAIServer

    go = get_taxonomy("goemotions28")
    ds = [d for d in load_dialogues(sample_path("ja")) if d.emotion in ("joy", "sadness", "anger")]
    seen: list[dict[str, object]] = []

    def responder(req: dict[str, object]) -> str:
        seen.append(req)
        sys_msg = req["messages"][0]["content"]  # type: ignore[index]
        return f"rejected[{sys_msg}] seed={req.get('seed')}"

    # the first two calls fail for good (500 beyond the retries), so one dialogue is left out
    script = [Fault.status(500)] * 2
    with OpenAIServer(responder=responder, script=script) as srv:
        ps = build_pairs(ds, go, epochs=2, seed=4, strategy="model", model="openai:kyokan-test",
                         base_url=srv.base_url, out_dir=tmp_path, concurrency=1, max_retries=1, timeout=10)
        calls = srv.count()
    n = len(ds)
    failed = [u for u in ps.ctx.unpaired if "could not generate" in u.reason]
    assert len(failed) == 1
    rows0, rows1 = ps.rows(0), ps.rows(1)
    assert len(rows0) == len(rows1) == n - 1
    assert check_rows(ds, go, {0: rows0, 1: rows1}, strategy="model", seed=4, require_all=False) == []
    for r in rows0:
        opp = go.opposite(r["meta"]["emotion"])
        assert r["meta"]["rejected_emotion"] == opp and r["meta"]["rejected_dialogue_id"] is None
        # the model was told the opposite emotion (Japanese dialogues: the Japanese label name)
        assert go.label(opp).ja in r["rejected"][0]["content"]
    # per-epoch seeds differ, so the rejected replies are redrawn
    assert rows0[0]["rejected"] != rows1[0]["rejected"]
    assert calls >= 2 * n
    # a rerun reuses generated.jsonl: only the failed dialogue is asked again
    with OpenAIServer(responder=responder) as srv2:
        ps2 = build_pairs(ds, go, epochs=2, seed=4, strategy="model", model="openai:kyokan-test",
                          base_url=srv2.base_url, out_dir=tmp_path, concurrency=1, max_retries=1, timeout=10)
        assert srv2.count() == 1
    assert len(ps2.rows(0)) == n
