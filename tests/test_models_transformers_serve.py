"""`generate`, `judge` and `eval emotions` through the openai: backend against a real
`transformers serve` (Hugging Face's OpenAI-compatible server) on loopback, serving the packaged
SmolLM2 from kyokan's converted cache. Slow: the server loads the model and decodes on the CPU."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from judge_util import record, write_records

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    """(base_url, served model name) of a `transformers serve` pinned to the packaged SmolLM2."""
    pytest.importorskip("openai")  # transformers serve needs it (the models extra has it)
    pytest.importorskip("fastapi")
    from kyokan.models.packaged import ensure_local

    path = str(ensure_local("smollm2-135m"))
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if exe is None:
        pytest.skip("the transformers CLI is not installed")
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"kyokan-transformers-serve-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([exe, "serve", path, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             "--dtype", "float32", "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                log.flush()
                pytest.fail(f"transformers serve exited with {proc.returncode}: "
                            f"{Path(log.name).read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not come up in 240 s")
            time.sleep(1)
        yield base, path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_backend_recognises_the_server_and_applies_stop_and_temperature(server: tuple[str, str]) -> None:
    from kyokan.models import GenerationParams, load_model
    from kyokan.models.backends.openai import OpenAIChatModel

    base, name = server
    m = load_model(f"openai:{name}", base_url=base, timeout=300)
    assert isinstance(m, OpenAIChatModel)
    msgs = [{"role": "user", "content": "Write two sentences about the sea."}]
    full = m.generate(msgs, GenerationParams(max_new_tokens=40))
    # a greedy request reads the same on every server: no probe was needed for it
    assert m.server_kind is None and full.finish_reason in ("stop", "length")
    assert len(full.text) > 20, full.text
    # a stop string from the middle of the (greedy, so repeatable) answer
    mid = len(full.text) // 2
    stop = full.text[mid:mid + 5]
    cut = m.generate(msgs, GenerationParams(max_new_tokens=40, stop=(stop,)))
    # the server leaves the stop string in; kyokan cuts it as every backend does
    assert stop not in cut.text and full.text.startswith(cut.text) and cut.finish_reason == "stop"
    assert len(cut.text) <= mid
    short = m.generate(msgs, GenerationParams(max_new_tokens=3))
    assert short.finish_reason == "length" and short.usage.completion_tokens == 3
    hot = m.generate(msgs, GenerationParams(max_new_tokens=8, temperature=0.9, seed=1))
    assert m.server_kind == "transformers-serve"  # sampling depends on the server: recognised now
    assert hot.sampling == {"temperature": 0.9, "top_p": 1.0, "via": "generation_config", "do_sample": True}


def test_generate_through_the_server(server: tuple[str, str], tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    base, name = server
    out = tmp_path / "gen.jsonl"
    r = cli("generate", _ed_sample(), "--task", "response", "--model", f"openai:{name}",
            "--base-url", base, "--limit", "2", "--max-new-tokens", "24", "--timeout", "300", "-o", out, "--json")
    assert r.code == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2
    for row in rows:
        g = row["meta"]["generation"]
        assert g["finish_reason"] in ("stop", "length") and g["raw"].strip()
        assert row["turns"][-1]["role"] == "listener"


def test_judge_through_the_server(server: tuple[str, str], tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    base, name = server
    inp = write_records(tmp_path / "in.jsonl", [record(i, lang="en", reply="That sounds frightening. I'm here.")
                                                for i in range(2)])
    r = cli("judge", inp, "-o", tmp_path / "j.jsonl", "--model", f"openai:{name}", "--base-url", base,
            "--metrics", "fluency,harmlessness", "--all-in-one", "--lang", "en", "--max-new-tokens", "96",
            "--max-reasks", "0", "--timeout", "300", "--json")
    assert r.code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["n_rows"] == 2 and s["scoring"]["mode"] == "text"  # it returns no log-probs
    so = s["structured_output"]
    assert so["decoding"] == {"response_format": 2} and so["structured_answers"] == 2
    assert any("transformers serve" in n for n in so["server_notes"])
    if so["schema_invalid"] > so["truncated"]:  # SmolLM2 decoding freely rarely writes the schema's JSON
        assert so["ignored_by_server"] is True and "ignores response_format" in s["warnings"][0]
    # a wrong model name is a configuration error: exit 1 with the server's message
    bad = cli("judge", inp, "-o", tmp_path / "bad.jsonl", "--model", "openai:someone/else", "--base-url", base,
              "--metrics", "fluency", "--timeout", "300")
    assert bad.code == 1 and "Server is pinned to" in bad.stderr and "Traceback" not in bad.stderr


def test_eval_emotions_through_the_server(server: tuple[str, str], tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    base, name = server
    for flag in ("--structured", "--no-structured"):
        out = tmp_path / flag.strip("-")
        r = cli("eval", "emotions", _ja_sample(), "--model", f"openai:{name}", "--base-url", base, "--limit", "2",
                "-o", out, "--no-bertscore", "--vectors", "none", flag)
        assert r.code == 0, r.stderr
        rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
        assert len(rows) == 2
        assert {row["decoding"] for row in rows} == ({"response_format"} if flag == "--structured" else {"free"})
        run = json.loads((out / "prediction_run.json").read_text(encoding="utf-8"))
        assert run["structured"] is (flag == "--structured")


def _ed_sample() -> str:
    from kyokan.data.samples import sample_path

    return str(sample_path("ed-en"))


def _ja_sample() -> str:
    from kyokan.data.samples import sample_path

    return str(sample_path("ja"))
