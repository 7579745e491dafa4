"""Cache and resume: a rerun is served from the cache, and a run killed mid-way resumes without
repeating finished work (a real `kyokan judge` process, SIGKILLed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from judge_util import judge_responder, record, write_records
from kyokan.judge import AnswerCache

KYOKAN = str(Path(sys.executable).with_name("kyokan"))


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_rerun_is_served_from_the_cache(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from kyokan.testing.openai_server import OpenAIServer

    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    out = tmp_path / "out.jsonl"
    with OpenAIServer(responder=judge_responder("json")) as srv:
        r1 = cli("judge", inp, "-o", out, "--model", "judge-x", "--base-url", srv.base_url, "--json")
        assert r1.code == 0, r1.stderr
        assert srv.calls == 28
        first = out.read_text(encoding="utf-8")
        # the same command again: everything is done, nothing is asked
        r2 = cli("judge", inp, "-o", out, "--model", "judge-x", "--base-url", srv.base_url, "--json")
        assert r2.code == 0 and srv.calls == 28
        assert json.loads(r2.stdout)["provenance"]["this_run"]["skipped_finished"] == 4
        # a fresh output file: every answer comes from the cache (beside the output by default)
        assert (tmp_path / "out.cache.sqlite").exists()
        r3 = cli("judge", inp, "-o", out, "--model", "judge-x", "--base-url", srv.base_url, "--overwrite", "--json")
        assert r3.code == 0 and srv.calls == 28
        calls = json.loads(r3.stdout)["provenance"]["this_run"]["calls"]
        assert calls["cached"] == 28 and calls["calls"] == 0
    def strip(text: str) -> list[dict]:
        rows = [json.loads(line) for line in text.splitlines()]
        for r in rows:
            u = r.pop("usage")
            assert u["total_tokens"] > 0  # cached answers keep their token counts
        return sorted(rows, key=lambda r: r["id"])

    assert strip(out.read_text(encoding="utf-8")) == strip(first)


def test_killed_run_resumes_without_repeating_finished_work(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from kyokan.testing.openai_server import OpenAIServer

    n = 8
    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(n)])
    out, cache = tmp_path / "out.jsonl", tmp_path / "judge.sqlite"
    with OpenAIServer(responder=judge_responder("json"), latency=0.1) as srv:
        args = ["judge", str(inp), "-o", str(out), "--model", "judge-x", "--base-url", srv.base_url,
                "--cache", str(cache), "--concurrency", "2", "--json"]
        proc = subprocess.Popen([KYOKAN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or len(_ids(out)) < 2):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before = _ids(out)
        assert 2 <= len(done_before) < n
        rows_before = {json.loads(line)["id"]: line for line in out.read_text(encoding="utf-8").splitlines()}
        with AnswerCache(cache) as c:
            answered = len(c)
        assert answered >= 7 * len(done_before)
        srv.reset_counters()
        r = cli(*args)
        assert r.code == 0, r.stderr
        # only questions without a cached answer were asked (in-flight ones at the kill included)
        assert srv.calls == 7 * n - answered
        sent = "\n".join(json.dumps(q, ensure_ascii=False) for q in srv.requests)
    for rid in done_before:  # no finished dialogue was asked about again
        i = int(rid[1:])
        assert f"{i}回目" not in sent
    final = out.read_text(encoding="utf-8").splitlines()
    assert sorted(_ids(out)) == [f"d{i:03d}" for i in range(n)]
    for line in final:
        rid = json.loads(line)["id"]
        if rid in rows_before:
            assert line == rows_before[rid]
    summary = json.loads(r.stdout)
    assert summary["provenance"]["this_run"]["skipped_finished"] == len(done_before)
    assert summary["status_counts"] == {"model-a": {"ok": n}}
