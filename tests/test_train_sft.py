"""SFT: prompt tokens masked, listener turns trained, presets as data, the run folder."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kyokan.errors import KyokanError
from kyokan.train import RunDir, build_sft_trainer, presets, resolve, run_sft, sft_examples
from train_util import settings, short_dialogues, tiny_model

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_prompt_tokens_are_masked(tmp_path: Path) -> None:
    data = short_dialogues(tmp_path, per_label=1)
    s = settings("sft", tmp_path / "run", data=str(data))
    rows = sft_examples(s)
    assert len(rows) == 8  # 4 dialogues × 2 listener turns (turns = "all", as EmPO)
    trainer, _ = build_sft_trainer(s, RunDir(s.output or ""), examples=rows)
    tok = trainer.processing_class
    for k, ex in enumerate(trainer.train_dataset):
        ids, labels = ex["input_ids"], ex["labels"]
        trained = [i for i, lab in zip(ids, labels, strict=True) if lab != -100]
        masked = [i for i, lab in zip(ids, labels, strict=True) if lab == -100]
        completion = rows[k]["completion"][0]["content"]
        prompt_text = tok.apply_chat_template(rows[k]["prompt"], tokenize=False, add_generation_prompt=True)
        # every trained token is the listener reply (plus the end-of-turn marker), nothing of the prompt
        assert tok.decode(trained).strip().startswith(completion)
        assert len(trained) <= len(tok(completion, add_special_tokens=False)["input_ids"]) + 3
        assert tok.decode(masked) == prompt_text
        # the masked part is exactly a prefix: labels switch on once and stay on
        first = next(i for i, lab in enumerate(labels) if lab != -100)
        assert all(lab != -100 for lab in labels[first:])
    last_only = sft_examples(settings("sft", tmp_path / "run2", data=str(data), turns="last"))
    assert len(last_only) == 4


def test_sft_run_folder(tmp_path: Path) -> None:
    data = short_dialogues(tmp_path, per_label=1)
    s = settings("sft", tmp_path / "run", data=str(data), max_steps=2, seed=3)
    res = run_sft(s)
    run = Path(s.output or "")
    assert res["global_step"] == 2
    for f in ("config.json", "trainer_args.json", "provenance.json", "loss.csv", "log_history.json", "result.json",
              "adapter/adapter_model.safetensors", "adapter/adapter_config.json", "adapter/tokenizer_config.json",
              "data/sft.jsonl"):
        assert (run / f).exists(), f
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["lora_r"] == 8 and cfg["seed"] == 3 and cfg["preset"] == "cpu-tiny"
    targs = json.loads((run / "trainer_args.json").read_text())
    assert targs["use_cpu"] is True and targs["bf16"] is False and targs["gradient_checkpointing"] is False
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["seed"] == 3 and prov["versions"]["trl"] and prov["model"]["path"] == tiny_model()
    assert any(v.get("sha256") for v in prov["data"].values())
    with open(run / "loss.csv") as f:
        curve = list(csv.DictReader(f))
    assert [int(r["step"]) for r in curve if r.get("loss")] == [1, 2]
    acfg = json.loads((run / "adapter/adapter_config.json").read_text())
    assert acfg["r"] == 8 and acfg["lora_alpha"] == 16
    # the same command again: already complete, nothing retrained
    again = run_sft(s)
    assert again["already_complete"] is True
    # the same folder with other settings is refused
    with pytest.raises(KyokanError, match="other settings"):
        RunDir(run).prepare(settings("sft", run, data=str(data), max_steps=2, seed=4))


def test_presets_are_data_and_config_layers(tmp_path: Path) -> None:
    p = presets()
    assert p["empo"]["sft"] | {} == p["empo"]["sft"]
    e = p["empo"]
    assert (e["sft"]["lora_r"], e["sft"]["lora_alpha"], e["sft"]["learning_rate"], e["sft"]["batch_size"],
            e["sft"]["epochs"]) == (1024, 64, 1e-5, 64, 1)
    assert (e["dpo"]["beta"], e["dpo"]["learning_rate"], e["dpo"]["epochs"]) == (0.05, 1e-6, 3)
    cfg = tmp_path / "c.toml"
    cfg.write_text('preset = "empo"\nmodel = "x"\ndata = "d.jsonl"\noutput = "o"\nlr = 3e-5\n[lora]\nr = 64\n'
                   '[trainer]\nmax_grad_norm = 0.3\n')
    s = resolve("sft", config=cfg, overrides={"seed": 9})
    assert (s.learning_rate, s.lora_r, s.lora_alpha, s.seed, s.batch_size) == (3e-5, 64, 64, 9, 64)
    assert s.trainer == {"max_grad_norm": 0.3}
    cfg.write_text('model = "x"\noutput = "o"\ndata = "d"\nlearning_rat = 1\n')
    with pytest.raises(KyokanError, match="did you mean 'learning_rate'"):
        resolve("sft", config=cfg)


def test_cli_errors_and_presets(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "kyokan.cli", "train", "presets", "--json"], capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["cpu-tiny"]["dpo"]["epochs"] == 3
    r = subprocess.run([sys.executable, "-m", "kyokan.cli", "train", "sft", "--preset", "nope", "--model", "x",
                        "--data", "d", "-o", str(tmp_path)], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 2 and "unknown preset" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "kyokan.cli", "train", "sft", "--preset", "cpu-tiny", "--model",
                        str(tmp_path / "nomodel"), "--data", "d", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_bad_input_leaves_nothing_behind(tmp_path: Path, cli: Any) -> None:
    """Missing data: exit 2, one line, no run folder. A failed attempt (bad model) writes nothing
    that refuses the corrected command; a finished run with other settings is refused."""
    out = tmp_path / "run"
    r = cli("train", "sft", "--preset", "cpu-tiny", "--model", tiny_model(), "--data", str(tmp_path / "missing.jsonl"),
            "-o", out)
    assert r.code == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "missing.jsonl: no such file or folder" in r.stderr
    assert not out.exists()
    data = short_dialogues(tmp_path, per_label=1)
    r = cli("train", "sft", "--preset", "cpu-tiny", "--model", str(tmp_path / "nomodel"), "--data", data, "-o", out)
    assert r.code == 2 and "Traceback" not in r.stderr and not (out / "config.json").exists()
    # an older kyokan wrote config.json before failing: a config alone blocks nothing
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"model": "other", "seed": 99}), encoding="utf-8")
    s = settings("sft", out, data=str(data), max_steps=1)
    assert run_sft(s)["global_step"] == 1
    with pytest.raises(KyokanError, match=r"other settings \(.*seed"):
        run_sft(settings("sft", out, data=str(data), max_steps=1, seed=7))
    assert run_sft(s)["already_complete"] is True


def test_bundled_data_on_the_train_cli(tmp_path: Path) -> None:
    s = resolve("sft", overrides={"preset": "cpu-tiny", "model": "x", "data": "bundled:ed-en", "output": "o"})
    assert s.taxonomy == "ed32"
    rows = sft_examples(s)
    assert len(rows) > 64  # every listener turn of the 64 bundled dialogues
    from kyokan.train.run import derive_batch

    assert derive_batch(s, 1) == (4, 1) and derive_batch(s, 2) == (2, 1) and derive_batch(s, 4) == (1, 1)
    big = resolve("sft", overrides={"preset": "empo", "model": "x", "data": "d", "output": "o"})
    assert derive_batch(big, 4) == (8, 2) and derive_batch(big, 8) == (8, 1)
    with pytest.raises(KyokanError, match="cannot be split over 3 processes"):
        derive_batch(big, 3)


def test_tracking_passes_through_and_python_m_kyokan(tmp_path: Path) -> None:
    from kyokan.train.run import RunDir, trainer_kwargs

    s = resolve("sft", overrides={"preset": "cpu-tiny", "model": "x", "data": "d", "output": str(tmp_path / "o")})
    assert trainer_kwargs(s, RunDir(tmp_path / "o"))["report_to"] == "none"
    t = resolve("sft", overrides={"preset": "cpu-tiny", "model": "x", "data": "d", "output": str(tmp_path / "o"),
                                  "report_to": "trackio", "run_name": "kyokan-sft-abc"})
    kw = trainer_kwargs(t, RunDir(tmp_path / "o"))
    assert kw["report_to"] == "trackio" and kw["run_name"] == "kyokan-sft-abc"
    assert t.training_key() == s.training_key()  # tracking changes no weight: a finished run is not "other settings"
    r = subprocess.run([sys.executable, "-m", "kyokan", "--version"], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("kyokan ")


def test_presets_print_as_toml(cli) -> None:  # type: ignore[no-untyped-def]
    """docs/train.md: `kyokan train presets` prints TOML (the config files' language); --json JSON."""
    import tomllib

    r = cli("train", "presets")
    assert r.code == 0 and r.stdout.startswith("[empo.sft]\n")
    assert tomllib.loads(r.stdout) == presets()
    r = cli("train", "presets", "--json")
    assert r.code == 0 and json.loads(r.stdout) == presets()
