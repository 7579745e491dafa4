"""User mistakes: one clear line naming the file/flag/key, exit 2, no traceback, no "Exception ignored";
typos get a suggestion; paths in a config file are relative to that file wherever kyokan runs.

The Done-when cases also run as a real subprocess (``python -m kyokan``): an in-process runner
would not see what the interpreter prints at exit (a writer closed by the garbage collector)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kyokan.data import sample_path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def kyokan(*args: str | os.PathLike[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kyokan", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(r: subprocess.CompletedProcess[str], *names: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr[-2000:]
    for n in names:
        assert n in r.stderr, (n, r.stderr)
    assert len(r.stderr.strip().splitlines()) <= 2, r.stderr


# --- Done-when cases, as a real process ------------------------------------------------------

def test_missing_inputs_are_one_line(tmp_path: Path) -> None:
    assert_user_error(kyokan("prefs", "build", "missing.csv", "-o", "p", cwd=tmp_path), "missing.csv", "no such file")
    r = kyokan("data", "convert", "missing.jsonl", "-o", "x.parquet", cwd=tmp_path)
    assert_user_error(r, "missing.jsonl", "no such file")
    assert not (tmp_path / "x.parquet").exists() and not list(tmp_path.iterdir())


def test_missing_training_data_leaves_no_config(tmp_path: Path) -> None:
    r = kyokan("train", "sft", "--preset", "cpu-tiny", "--model", "smollm2-135m", "--data", "missing.jsonl",
               "-o", "run", cwd=tmp_path)
    assert_user_error(r, "missing.jsonl", "--data")
    assert not (tmp_path / "run").exists()
    # a run config whose data is missing makes no run folder either
    (tmp_path / "r.toml").write_text('[run]\nname = "r"\nout = "runs"\n[data]\npath = "missing.jsonl"\n', encoding="utf-8")
    assert_user_error(kyokan("run", "r.toml", cwd=tmp_path), "data.path", "missing.jsonl")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # ~45 s: loads the example's real model
def test_train_example_config_from_another_folder(tmp_path: Path) -> None:
    """examples/train_sft_cpu.toml names bundled data and a run folder relative to itself: it works
    from any folder (one optimizer step here; -o on the command line is relative to the cwd)."""
    r = kyokan("train", "sft", "-c", ROOT / "examples" / "train_sft_cpu.toml", "--max-steps", "1", "--max-length", "64",
               "--batch-size", "1", "--per-device-batch-size", "1", "-o", "out", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "out" / "result.json").is_file()
    cfg = json.loads((tmp_path / "out" / "config.json").read_text(encoding="utf-8"))
    assert cfg["data"] == "bundled:ed-en" and cfg["max_steps"] == 1


@pytest.mark.slow  # lm-eval indexes its ~10k task YAMLs first (~20 s)
def test_lm_eval_task_data_offline(tmp_path: Path) -> None:
    r = kyokan("eval", "general", "-m", "smollm2-135m", "--tasks", "mmlu", "--limit", "1", "-o", "g", cwd=tmp_path,
               timeout=300)
    assert_user_error(r, "--tasks mmlu", "cais/mmlu", "HF_DATASETS_OFFLINE")
    assert "Loading weights" not in r.stderr  # the data is checked before the model loads
    assert not (tmp_path / "g").exists()


# --- config paths: one rule ------------------------------------------------------------------

def test_train_config_paths_are_relative_to_the_config(tmp_path: Path, cli: Any) -> None:
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "t.toml").write_text('preset = "cpu-tiny"\nmodel = "smollm2-135m"\ndata = "d.jsonl"\noutput = "out"\n',
                                    encoding="utf-8")
    from kyokan.train.config import resolve

    s = resolve("sft", config=cfg_dir / "t.toml")
    assert s.data == str(cfg_dir / "d.jsonl") and s.output == str(cfg_dir / "out")
    assert s.model == "smollm2-135m"  # a packaged name is not a path
    # flags stay relative to the current folder
    assert resolve("sft", config=cfg_dir / "t.toml", overrides={"output": "o2"}).output == "o2"
    r = cli("train", "sft", "-c", cfg_dir / "t.toml")
    assert r.code == 2 and f"{cfg_dir / 'd.jsonl'}: no such file or folder (--data)" in r.stderr
    assert not (cfg_dir / "out").exists()


def test_run_config_out_relative_to_config(tmp_path: Path) -> None:
    from kyokan.pipeline import Runner, load_config

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "r.toml").write_text('[run]\nname = "r"\nout = "runs"\n[data]\npath = "bundled:ja"\n', encoding="utf-8")
    cfg = load_config(sub / "r.toml")
    assert Runner(cfg, sub / "r.toml").run_dir == sub / "runs" / "r"


def test_run_sample_too_large_names_the_config_key(tmp_path: Path, cli: Any) -> None:
    p = tmp_path / "r.toml"
    p.write_text(f'[run]\nname = "r"\nout = "{tmp_path / "runs"}"\n[data]\npath = "bundled:ja"\n'
                 '[split]\nratios = [0.5, 0.0, 0.5]\n[sample]\nn = 100\nsource = "test"\n', encoding="utf-8")
    r = cli("run", p)
    assert r.code != 0 and "sample.n = 100 is more than the" in r.stderr and "--n" not in r.stderr


# --- typos and layouts -----------------------------------------------------------------------

def test_config_unknown_key_suggests(tmp_path: Path, cli: Any) -> None:
    p = tmp_path / "r.toml"
    p.write_text('[run]\nname = "r"\n[data]\npath = "bundled:ja"\n[prefs]\nepoch = 3\n', encoding="utf-8")
    r = cli("run", p)
    assert r.code == 2 and f"{p}:6: prefs.epoch: unknown key (did you mean 'epochs'?)" in r.stderr
    t = tmp_path / "t.toml"
    t.write_text('lora_alfa = 3\n', encoding="utf-8")
    r = cli("train", "sft", "-c", t)
    assert r.code == 2 and "unknown setting 'lora_alfa' (did you mean 'lora_alpha'?)" in r.stderr


def test_crowd_config_unknown_key_suggests(tmp_path: Path, cli: Any) -> None:
    db = str(tmp_path / "c.db")
    assert cli("crowd", "init", "--db", db).code == 0
    r = cli("crowd", "config", "--db", db, "--set", "pay.dialogu=50")
    assert r.code == 2 and "did you mean 'pay.dialogue'?" in r.stderr
    r = cli("crowd", "config", "--db", db, "--set", "rejection_cp=0.2")
    assert r.code == 2 and "did you mean 'rejection_cap'?" in r.stderr
    r = cli("crowd", "config", "--db", db, "--json")
    assert "dialogu" not in json.loads(r.stdout)["pay"]


def test_ratios_must_sum_to_one(tmp_path: Path, cli: Any) -> None:
    r = cli("data", "split", sample_path("ja"), "-o", tmp_path / "s", "--seed", "1", "--ratios", "0.8,0.3,0.1")
    assert r.code == 2 and "--ratios 0.8,0.3,0.1 sums to 1.2, not 1" in r.stderr
    assert not (tmp_path / "s").exists()
    p = tmp_path / "r.toml"
    p.write_text('[run]\nname = "r"\n[data]\npath = "bundled:ja"\n[split]\nratios = [0.8, 0.3, 0.1]\n', encoding="utf-8")
    r = cli("run", p)
    assert r.code == 2 and "split.ratios" in r.stderr and "sum to 1 (they sum to 1.2)" in r.stderr


def test_validate_output_without_skip_invalid(tmp_path: Path, cli: Any) -> None:
    good = sample_path("ja")
    r = cli("data", "validate", good, "-o", tmp_path / "v.jsonl")
    assert r.code == 0 and (tmp_path / "v.jsonl").read_text(encoding="utf-8").count("\n") == 168
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"id": "x"}\n' + good.read_text(encoding="utf-8"), encoding="utf-8")
    r = cli("data", "validate", mixed, "-o", tmp_path / "w.jsonl")
    assert r.code == 2 and "w.jsonl not written" in r.stderr and not (tmp_path / "w.jsonl").exists()


def test_layout_mismatch_is_one_line(tmp_path: Path, cli: Any) -> None:
    j = tmp_path / "j.csv"
    j.write_bytes(sample_path("ja").read_bytes())
    r = cli("data", "validate", j)
    assert r.code == 2 and r.stderr.strip() == f"{j}:1: looks like JSONL (a JSON object per line), not kyokan CSV; give --format jsonl"
    assert cli("data", "validate", j, "--format", "jsonl").code == 0
    e = tmp_path / "e.jsonl"
    e.write_bytes(sample_path("ed-en").read_bytes())
    r = cli("prefs", "build", e, "-o", tmp_path / "p")
    assert r.code == 2 and r.stderr.strip().endswith("give --format ed") and r.stderr.count("\n") == 1
    assert cli("data", "validate", e, "--format", "ed").code == 0


def test_bundled_specs_everywhere(tmp_path: Path, cli: Any) -> None:
    r = cli("data", "validate", "bundled:ed-en")
    assert r.code == 0 and "64 valid" in r.stdout
    r = cli("prefs", "build", "bundled:ed-en", "--epochs", "1", "-o", tmp_path / "p")
    assert r.code == 0 and (tmp_path / "p" / "epoch-0.jsonl").is_file()
    r = cli("data", "stats", "bundled:ja-x")
    assert r.code == 2 and "unknown bundled sample 'ja-x' (did you mean 'ja'?)" in r.stderr


def test_hf_missing_folder(tmp_path: Path, cli: Any) -> None:
    r = cli("models", "chat", "hf:./nonexistent", "hi")
    assert r.code == 2 and "hf:./nonexistent: no such folder" in r.stderr and "Repo id" not in r.stderr


def test_csv_problem_at_first_line_of_record(tmp_path: Path, cli: Any) -> None:
    """A quoted cell spanning lines: the problem names the line the record starts on."""
    from report_util import dialogues, write_jsonl

    src = write_jsonl(tmp_path / "gpt.jsonl", dialogues("gpt-o3", 4))
    assert cli("human", "build", src, "--style", "emplifai", "--seed", "1", "-o", tmp_path / "survey").code == 0
    scales = "content_comprehensibility,general_empathy,emotion_specific_empathy,consistency,fluency,harmlessness,sense_of_security"
    ratings = tmp_path / "r.csv"
    ratings.write_text(f"rater,item,{scales}\n" + 'w1,"no\npe\nx",4,4,4,4,4,4,4\n', encoding="utf-8")
    r = cli("human", "import", ratings, "--key", tmp_path / "survey.key.json", "-o", tmp_path / "h")
    assert r.code == 2 and f"{ratings}:2: item: unknown item" in r.stderr, r.stderr
    kc = tmp_path / "d.csv"
    kc.write_text('id,situation_id,emotion,lang,situation,turns\na,s,joyy,en,"two\nlines",'
                  '"[{""role"": ""speaker"", ""text"": ""hi""}, {""role"": ""listener"", ""text"": ""yo""}]"\n',
                  encoding="utf-8")
    r = cli("data", "validate", kc)
    assert r.code == 2 and f"{kc}:2: emotion" in r.stderr, r.stderr
