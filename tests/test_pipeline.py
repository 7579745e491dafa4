"""`kyokan run`: typed config errors with lines, the stage cache (skip, invalidate), resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kyokan.pipeline import Runner, load_config

DATA_ONLY = """
[run]
name = "t"
seed = 5

[data]
path = "bundled:ja"

[split]
ratios = [0.5, 0.0, 0.5]

[sample]
n = 6
stratify = true

[prefs]
epochs = 2
"""


def _write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_config_errors_name_key_and_line(tmp_path, cli):
    bad = DATA_ONLY.replace("n = 6", "n = -1").replace("epochs = 2", "epochs = 2\nepoch = 3")
    p = _write(tmp_path, bad)
    r = cli("run", p)
    assert r.code == 2 and "Traceback" not in r.stderr
    lines = bad.splitlines()
    n_line = next(i for i, x in enumerate(lines, 1) if x.startswith("n = -1"))
    e_line = next(i for i, x in enumerate(lines, 1) if x.startswith("epoch = 3"))
    assert f"{p}:{n_line}: sample.n: Input should be greater than 0" in r.stderr
    assert f"{p}:{e_line}: prefs.epoch: unknown key" in r.stderr


def test_config_missing_and_bad_toml(tmp_path, cli):
    r = cli("run", _write(tmp_path, "[run]\nname = 'x'\n"))
    assert r.code == 2 and "data: missing" in r.stderr
    r = cli("run", _write(tmp_path, "[run\nname = 1\n", "b.toml"))
    assert r.code == 2 and "b.toml:1: not valid TOML" in r.stderr
    r = cli("run", _write(tmp_path, DATA_ONLY.replace('"bundled:ja"', '"nope.jsonl"'), "c.toml"))
    assert r.code == 2 and "nope.jsonl does not exist" in r.stderr
    r = cli("run", _write(tmp_path, DATA_ONLY.replace('seed = 5', 'seed = 5\nstages = ["validate", "fly"]'), "d.toml"))
    assert r.code == 2 and "unknown stage 'fly'" in r.stderr


def test_stage_cache_skip_and_invalidate(tmp_path):
    cfg_path = _write(tmp_path, DATA_ONLY)
    out = tmp_path / "runs"
    r1 = Runner(load_config(cfg_path), cfg_path, out=out).run()
    assert not any(v.get("cached") for v in r1.values())
    pairs1 = (out / "t" / "prefs" / "epoch-0.jsonl").read_bytes()
    r2 = Runner(load_config(cfg_path), cfg_path, out=out).run()
    assert all(v.get("cached") for v in r2.values())
    # a change in one stage's settings re-runs it and what reads it, nothing upstream
    cfg_path.write_text(DATA_ONLY.replace("n = 6", "n = 8"), encoding="utf-8")
    r3 = Runner(load_config(cfg_path), cfg_path, out=out).run()
    assert r3["validate"].get("cached") and r3["split"].get("cached") and r3["prefs"].get("cached")
    assert not r3["sample"].get("cached") and r3["sample"]["pairs"] == 8
    # an upstream change (the split seed) invalidates everything downstream of it
    cfg_path.write_text(DATA_ONLY.replace("ratios = [0.5, 0.0, 0.5]", "ratios = [0.5, 0.0, 0.5]\nseed = 9"), encoding="utf-8")
    r4 = Runner(load_config(cfg_path), cfg_path, out=out).run()
    assert r4["validate"].get("cached") and not r4["split"].get("cached")
    assert not r4["prefs"].get("cached") and not r4["sample"].get("cached")
    assert (out / "t" / "prefs" / "epoch-0.jsonl").read_bytes() != pairs1
    # --from re-runs a stage even when cached; provenance is written per stage
    r5 = Runner(load_config(cfg_path), cfg_path, out=out).run(from_stage="sample")
    assert r5["split"].get("cached") and not r5["sample"].get("cached") and not r5["prefs"].get("cached")
    prov = json.loads((out / "t" / "sample" / "provenance.json").read_text(encoding="utf-8"))
    assert prov["seed"] == 5 and prov["packages"]["kyokan"] and prov["config"]["n"] == 6


def test_data_change_invalidates(tmp_path):
    from kyokan.data import sample_path

    data = tmp_path / "d.jsonl"
    data.write_bytes(sample_path("ja").read_bytes())
    cfg_path = _write(tmp_path, DATA_ONLY.replace('"bundled:ja"', '"d.jsonl"'))
    out = tmp_path / "runs"
    Runner(load_config(cfg_path), cfg_path, out=out).run()
    lines = data.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    r = Runner(load_config(cfg_path), cfg_path, out=out).run()
    assert not r["validate"].get("cached") and r["validate"]["dialogues"] == 165


def _tiny_config(tmp_path: Path, steps: int) -> Path:
    from kyokan.testing import tiny_causal_lm

    tiny = tiny_causal_lm()
    return _write(tmp_path, f"""
[run]
name = "tiny"
seed = 3
[data]
path = "bundled:ja"
[split]
ratios = [0.5, 0.0, 0.5]
[sample]
n = 3
stratify = true
[sft]
model = "{tiny}"
preset = "cpu-tiny"
options = {{ max_steps = {steps}, max_length = 128, save_steps = 1, logging_steps = 1 }}
[generate]
systems = ["base", "sft"]
max_new_tokens = 8
[eval_responses]
[report]
""")


@pytest.mark.slow  # ~35 s: a whole run, killed and resumed
def test_tiny_model_run_resumes_after_kill(tmp_path):
    """SIGKILL `kyokan run` once SFT has written a checkpoint; the same command then finishes,
    taking the finished stages from the cache and SFT from its checkpoint."""
    cfg = _tiny_config(tmp_path, steps=6)
    out = tmp_path / "runs"
    exe = str(Path(sys.executable).parent / "kyokan")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([exe, "run", str(cfg), "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    ckpt = out / "tiny" / "sft" / "run" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        # a complete checkpoint: trainer_state.json is written last
        if ckpt.exists() and any((p / "trainer_state.json").exists() for p in ckpt.glob("checkpoint-*")):
            break
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.fail(f"run ended before a checkpoint: {proc.stderr.read().decode() if proc.stderr else ''}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((out / "tiny" / "sft" / "stage.json").read_text(encoding="utf-8"))
    assert state["status"] == "running"
    r = subprocess.run([exe, "run", str(cfg), "--out", str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "validate: cached" in r.stdout and "sample: cached" in r.stdout
    res = json.loads((out / "tiny" / "sft" / "run" / "result.json").read_text(encoding="utf-8"))
    assert res["resumed_from"], res
    assert (out / "tiny" / "report" / "report.html").exists()
    # a rerun is all cache
    r2 = subprocess.run([exe, "run", str(cfg), "--out", str(out)], capture_output=True, text=True, env=env)
    assert r2.returncode == 0 and r2.stdout.count("cached") == 7, r2.stdout


@pytest.mark.slow
def test_reduced_demo_end_to_end(tmp_path, cli):
    """The shipped demo config on packaged models, cut down: every stage runs and the report
    shows base vs SFT vs SFT+DPO."""
    sets = ["sample.n=4", "generate.max_new_tokens=24",
            "sft.options={ max_steps = 1, max_length = 96, per_device_batch_size = 1, batch_size = 1, save_steps = 1 }",
            "dpo.options={ max_steps = 1, max_length = 192, per_device_batch_size = 1, batch_size = 1, save_steps = 1 }",
            "judge.options={ max_new_tokens = 24, max_reasks = 0 }"]
    from kyokan.pipeline.stages import demo_config_path

    args = ["run", demo_config_path(), "--out", tmp_path]
    for s in sets:
        args += ["--set", s]
    r = cli(*args)
    assert r.code == 0, r.stderr[-3000:]
    run = tmp_path / "demo"
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    for label in ("gemma3-270m", "gemma3-270m+sft", "gemma3-270m+sft+dpo"):
        assert (run / "generate" / label / "generated.jsonl").exists()
        assert label in html
    assert "stand-in" in html.lower() or "stand_in" in html.lower()
