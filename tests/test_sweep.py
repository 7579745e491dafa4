"""`kyokan sweep`: expansion and stage sharing, --dry-run, launchers (local, submitit's local
executor), a failed run reported, resume after a kill, and the aggregate's numbers checked
against an independent computation (numpy, scipy) on real stage outputs of a tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kyokan.pipeline import Runner, load_config
from kyokan.pipeline.sweep import expand, point_done, read_manifest

DATA_SWEEP = """
[run]
name = "d"
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
[sweep]
seeds = [1, 2]
[sweep.grid]
sample.n = [4, 6]
"""

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
KYOKAN = [sys.executable, "-m", "kyokan"]


def _write(tmp: Path, text: str, name: str = "sweep.toml") -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def test_seed_enters_fingerprints_as_each_stage_uses_it(tmp_path: Path) -> None:
    cfg = _write(tmp_path, DATA_SWEEP)
    fp = {}
    for name, sets in {"a": {"run.seed": 1}, "b": {"run.seed": 2}, "c": {"run.seed": 1, "split.seed": 1}}.items():
        fp[name] = Runner(load_config(cfg, sets), cfg, out=tmp_path).plan_fingerprints()
    assert fp["a"]["validate"] == fp["b"]["validate"]  # validate draws nothing
    assert fp["a"]["split"] != fp["b"]["split"]  # split uses run.seed when it has none of its own
    assert fp["a"]["split"] == fp["c"]["split"]  # the same seed, set either way, is the same computation
    assert fp["a"]["prefs"] == fp["c"]["prefs"]


def test_expand_plan_and_dry_run(tmp_path: Path, cli: Any) -> None:
    cfg = _write(tmp_path, DATA_SWEEP)
    plan = expand(cfg, out=tmp_path / "out")
    names = [p.name for p in plan.points]
    assert names == ["n-4_seed-1", "n-4_seed-2", "n-6_seed-1", "n-6_seed-2"]
    # split and sample keep the base seed (5) for every sweep seed: one test set for all runs
    assert all(p.cfg.split and p.cfg.split.seed == 5 and p.cfg.sample and p.cfg.sample.seed == 5 for p in plan.points)
    assert [p.cfg.run.seed for p in plan.points] == [1, 2, 1, 2]
    reuse = {r["point"]: r for r in plan.reuse()}
    assert reuse["n-4_seed-1"]["computes"] == ["validate", "split", "sample", "prefs"]
    assert reuse["n-4_seed-2"]["computes"] == ["prefs"]  # new seed: new pair draw, same data
    assert reuse["n-6_seed-1"]["computes"] == ["sample"]
    assert reuse["n-6_seed-2"]["computes"] == []
    r = cli("sweep", cfg, "-o", tmp_path / "out", "--dry-run")
    assert r.code == 0, r.stderr
    assert "16 stage runs, 6 computed (10 shared)" in r.stdout and "n-6_seed-2" in r.stdout
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    # --no-share: every run computes all of its stages
    r = cli("sweep", cfg, "-o", tmp_path / "out", "--dry-run", "--no-share")
    assert "16 stage runs, 16 computed" in r.stdout


def test_sweep_config_errors(tmp_path: Path, cli: Any) -> None:
    r = cli("sweep", _write(tmp_path, DATA_SWEEP.replace("sample.n = [4, 6]", "sample.nn = [4, 6]"), "a.toml"), "--dry-run")
    assert r.code == 2 and "sample.nn: unknown key (did you mean 'n'?) (sweep point" in r.stderr and "Traceback" not in r.stderr
    r = cli("sweep", _write(tmp_path, DATA_SWEEP.replace("sample.n = [4, 6]", "sample.n = 4"), "b.toml"), "--dry-run")
    assert r.code == 2 and "sweep.grid.sample.n: expected a non-empty list" in r.stderr
    tiny = DATA_SWEEP + '[sft]\nmodel = "x"\n'
    r = cli("sweep", _write(tmp_path, tiny.replace("sample.n = [4, 6]", '"sft.options.lora_alfa" = [8]'), "c.toml"), "--dry-run")
    assert r.code == 2 and "did you mean 'lora_alpha'" in r.stderr
    one_sided = DATA_SWEEP + '[sweep.tests]\nalternative = "greater"\n'
    r = cli("sweep", _write(tmp_path, one_sided, "d.toml"), "--dry-run")
    assert r.code == 2 and "one-sided test needs sweep.tests.pairs" in r.stderr
    r = cli("sweep", _write(tmp_path, DATA_SWEEP.split("[sweep]")[0], "e.toml"), "--dry-run")
    assert r.code == 2 and "needs a [sweep] table" in r.stderr


def _launches(run: Path) -> int:
    log = run / "run.log"
    return log.read_text(encoding="utf-8").count(" launch: ") if log.exists() else 0


def test_sweep_shares_stages_reports_a_failed_run_and_resumes_after_a_kill(tmp_path: Path) -> None:
    # the third grid value fails at run time (strategy "model" without a model)
    text = DATA_SWEEP.replace("sample.n = [4, 6]", 'prefs.strategy = ["opposite", "same-situation", "model"]')
    cfg = _write(tmp_path, text)
    out = tmp_path / "out"
    cmd = [*KYOKAN, "sweep", str(cfg), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    runs = out / "runs"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and not (runs / "strategy-opposite_seed-2" / "run.log").exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before its second run started"
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and the run it is in
    proc.wait()
    man = read_manifest(out)
    status = {p["name"]: p["status"] for p in man["points"]}
    assert status["strategy-opposite_seed-1"] == "complete" and status["strategy-opposite_seed-2"] == "running"
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr  # a failed run makes the sweep fail, after the rest ran
    assert "2 of 6 runs failed: strategy-model_seed-1, strategy-model_seed-2" in r.stderr
    assert "strategy-opposite_seed-1: complete, not run again" in r.stdout
    assert _launches(runs / "strategy-opposite_seed-1") == 1  # not redone
    assert _launches(runs / "strategy-opposite_seed-2") == 2  # the killed run, relaunched
    man = read_manifest(out)
    recs = {p["name"]: p for p in man["points"]}
    failed = recs["strategy-model_seed-1"]
    assert failed["status"] == "failed" and failed["exit_code"] == 2
    assert "prefs.model is needed" in Path(failed["log"]).read_text(encoding="utf-8")
    # one copy of each distinct stage: validate, split, sample once; prefs per (strategy, seed)
    store = out / "stages"
    counts = {d.name: len([x for x in d.iterdir() if x.is_dir()]) for d in store.iterdir()}
    assert counts == {"validate": 1, "split": 1, "sample": 1, "prefs": 6}
    assert (runs / "strategy-opposite_seed-2" / "split").is_symlink()
    assert (runs / "strategy-opposite_seed-2" / "split").resolve() == (runs / "strategy-opposite_seed-1" / "split").resolve()
    html = (out / "aggregate" / "sweep.html").read_text(encoding="utf-8")
    assert "Runs left out" in html and "strategy-model_seed-1" in html


def test_submitit_local_executor(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    text = DATA_SWEEP + '\n[sweep.submitit]\ncluster = "local"\ntimeout_min = 10\n'
    text = text.replace('seeds = [1, 2]', 'seeds = [1, 2]\nlauncher = "submitit"').replace("sample.n = [4, 6]", "sample.n = [4]")
    cfg = _write(tmp_path, text)
    out = tmp_path / "out"
    # two jobs in parallel: both need the same validate/split/sample, computed once under the store's lock
    r = subprocess.run([*KYOKAN, "sweep", str(cfg), "-o", str(out)], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    man = read_manifest(out)
    for p in man["points"]:
        assert p["status"] == "complete" and p["exit_code"] == 0 and p["job_id"]
        assert Path(p["job_stdout"]).parent.is_dir()
    plan = expand(cfg, out=out)
    assert all(point_done(plan, p) for p in plan.points)
    assert len(list((out / "stages" / "validate").iterdir())) == 2  # one folder + its lock file


# --- a real sweep on the tiny model: the aggregate's numbers ------------------------------------

def _tiny_sweep(tmp: Path) -> Path:
    from kyokan.testing import tiny_causal_lm

    tiny = tiny_causal_lm()
    return _write(tmp, f"""
[run]
name = "tiny"
seed = 3
lang = "ja"
[data]
path = "bundled:ja"
[split]
ratios = [0.5, 0.0, 0.5]
[sample]
n = 5
stratify = true
[sft]
model = "{tiny}"
preset = "cpu-tiny"
options = {{ max_steps = 2, max_length = 96, save_steps = 2, learning_rate = 0.05 }}
[generate]
systems = ["base", "sft"]
task = "response"
max_new_tokens = 6
temperature = 0.9
batch_size = 5
[eval_responses]
metrics = ["length"]
[sweep]
seeds = [1, 2]
[sweep.grid]
"sft.options.lora_alpha" = [4, 64]
""")


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from kyokan.pipeline.aggregate import aggregate
    from kyokan.pipeline.sweep import run_one

    tmp = tmp_path_factory.mktemp("tiny_sweep")
    plan = expand(_tiny_sweep(tmp), out=tmp / "out")
    for p in plan.points:  # in-process (the launchers are tested above): four short runs
        run_one(plan, p.name)
    return plan, aggregate(plan)


def _listener_chars(path: Path) -> dict[str, float]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        reply = [t["text"] for t in r["turns"] if t["role"] == "listener"][-1]
        out[r["id"]] = float(len(unicodedata.normalize("NFC", reply)))
    return out


def test_aggregate_mean_sd_equals_independent_computation(tiny_sweep: Any) -> None:
    plan, info = tiny_sweep
    agg = json.loads((plan.out / "aggregate" / "aggregate.json").read_text(encoding="utf-8"))
    cells = {(r["config"], r["system"], r["metric"]): r for r in agg["mean_sd"]}
    systems = set(agg["systems"])
    assert len(systems) == 2 and info["configs"] == 2 and not info["failed"]
    checked = 0
    for config in ("lora_alpha-4", "lora_alpha-64"):
        for system in systems:
            # from the generated replies themselves, not from the stage's summary
            per_seed = [np.mean(list(_listener_chars(plan.runs_dir / f"{config}_seed-{s}" / "generate"
                                                     / system / "generated.jsonl").values())) for s in (1, 2)]
            cell = cells[(config, system, "length.chars")]
            assert cell["n_seeds"] == 2
            assert cell["mean"] == pytest.approx(np.mean(per_seed), abs=1e-9)
            assert cell["sd"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-9)
            checked += 1
    assert checked == 4
    csv = (plan.out / "aggregate" / "tables" / "sweep_mean_sd.csv").read_text(encoding="utf-8")
    assert csv.splitlines()[0].startswith("config,system,seeds,") and " ± " in csv
    for f in ("fig-sweep.png", "fig-stability.png"):
        assert (plan.out / "aggregate" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aggregate_tests_equal_scipy(tiny_sweep: Any) -> None:
    from scipy.stats import binomtest, permutation_test

    plan, _ = tiny_sweep
    agg = json.loads((plan.out / "aggregate" / "aggregate.json").read_text(encoding="utf-8"))
    perm = [t for t in agg["tests"] if t["metric"] == "length.chars"]
    assert perm, agg["tests"]
    for t in perm:
        vals = {}
        for sys_ in (t["a"], t["b"]):
            runs = [_listener_chars(plan.runs_dir / f"{t['config']}_seed-{s}" / "generate" / sys_ / "generated.jsonl") for s in (1, 2)]
            vals[sys_] = {i: np.mean([r[i] for r in runs]) for i in runs[0]}
        ids = sorted(vals[t["a"]])
        ref = permutation_test((np.array([vals[t["a"]][i] for i in ids]), np.array([vals[t["b"]][i] for i in ids])),
                               lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf,
                               alternative="two-sided")
        assert t["items"] == len(ids) and t["p"] == pytest.approx(ref.pvalue, abs=1e-12)
        assert t["result"]["alternative"] == "two-sided"
    mc = [t for t in agg["tests"] if t["metric"] == "format_ok"]
    assert mc and all(t["test"].startswith("McNemar (seed ") for t in mc)
    for t in mc:
        b_, c_ = t["result"]["extra"]["a_only"], t["result"]["extra"]["b_only"]
        want = 1.0 if b_ + c_ == 0 else binomtest(min(b_, c_), b_ + c_, 0.5).pvalue
        assert t["p"] == pytest.approx(want, abs=1e-12)
    holm = sorted(t["p_holm"] for t in agg["tests"])
    assert all(0 <= p <= 1 for p in holm)


def test_tracker_runs_recorded_per_point(tmp_path: Path) -> None:
    cfg = _write(tmp_path, DATA_SWEEP.replace('seed = 5', 'seed = 5\nreport_to = "trackio"') + '[sft]\nmodel = "x"\n')
    plan = expand(cfg, out=tmp_path / "out")
    from kyokan.pipeline.sweep import write_manifest

    write_manifest(plan, {})
    man = read_manifest(tmp_path / "out")
    tr = {p["name"]: p["tracker_runs"] for p in man["points"]}
    assert tr["n-4_seed-1"]["sft"].startswith("kyokan-sft-")
    assert tr["n-4_seed-1"]["sft"] == tr["n-6_seed-1"]["sft"]  # sample.n does not touch SFT: one shared run
    assert tr["n-4_seed-1"]["sft"] != tr["n-4_seed-2"]["sft"]


def test_sets_reach_every_run_as_typed() -> None:
    import tomllib

    from kyokan.pipeline.sweep import toml_value

    for v in (3, 0.5, True, "a \"q\" é", [1, "x"], {"max_steps": 2, "lora": {"alpha": 8}}, 1e-06):
        assert tomllib.loads(f"x = {toml_value(v)}")["x"] == v
