"""Multi-process training on CPU (torchrun, gloo): every rank trains on the same pairs per epoch,
only rank 0 writes kyokan's files, resume works, and 2 processes × per-device batch 1 end at the
same weights as 1 process × per-device batch 2 (the same global batch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kyokan.train import adapter_weights, run_dpo, run_sft
from train_util import settings, short_dialogues, tiny_model

#: max |w_2proc − w_1proc| over every adapter weight. The two runs differ only in floating-point
#: summation order (gloo's all-reduce of two half-batch gradients vs one batch of two, padding);
#: measured ~1e-8 here, so 1e-5 leaves room across CPUs while any real difference (another
#: batch, another draw, a missed gradient) is orders of magnitude larger (LoRA steps move
#: weights by ~1e-3).
WEIGHT_TOL = 1e-5
COMMON: dict[str, Any] = {"lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}


def _varied_dialogues(path: Path) -> None:
    """Two dialogues per label whose replies differ, so the rejected reply is a real draw."""
    from kyokan.data import Dialogue, Turn, write_dialogues
    from train_util import LABELS, LISTENER, SPEAKER

    ds = [Dialogue(id=f"{lab}-{k}", situation_id=f"s-{lab}", emotion=lab, lang="en", situation="…",
                   turns=[Turn("speaker", SPEAKER[lab]), Turn("listener", f"{LISTENER[lab][0]} ({k})"),
                          Turn("speaker", f"Yes, {k}."), Turn("listener", f"{LISTENER[lab][1]} ({k})")])
          for lab in LABELS for k in range(2)]
    path.parent.mkdir(parents=True)
    write_dialogues(path, ds)


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("ddp")
    short_dialogues(tmp, per_label=1)
    _varied_dialogues(tmp / "pairs-data" / "dialogues.jsonl")
    tiny_model()  # build the cached model once, before two processes race for it
    report = tmp / "report"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(Path(__file__).parent)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(Path(__file__).parent / "ddp_worker.py"), str(tmp), str(report)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    ranks = {k: json.loads((report / f"rank-{k}.json").read_text(encoding="utf-8")) for k in (0, 1)}
    return tmp, ranks


def test_same_pairs_and_order_on_every_rank(ddp: tuple[Path, dict[int, dict[str, Any]]]) -> None:
    _, ranks = ddp
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["pair_epochs"] == ranks[1]["pair_epochs"] and len(ranks[0]["pair_epochs"]) == 2
    # the draw is fresh per epoch (else "the same on both ranks" would be trivially met by one set)
    assert ranks[0]["pair_epochs"]["0"] != ranks[0]["pair_epochs"]["1"]
    assert ranks[0]["sampler_order"] == ranks[1]["sampler_order"]
    assert sorted(ranks[0]["sampler_order"]) == list(range(len(ranks[0]["sampler_order"])))


def test_only_rank_zero_writes(ddp: tuple[Path, dict[int, dict[str, Any]]]) -> None:
    tmp, ranks = ddp
    runs = [str(tmp / n) for n in ("sft-2p", "dpo-2p", "dpo-2p-cut")]

    def in_runs(paths: list[str]) -> list[str]:
        return [p for p in paths if any(p == r or p.startswith(r + "/") for r in runs)]

    w0, w1 = in_runs(ranks[0]["writes"]), in_runs(ranks[1]["writes"])
    assert any(p.endswith("/config.json") for p in w0) and any(p.endswith("/result.json") for p in w0)
    # rank 1 writes nothing of kyokan's; the Trainer's checkpoints hold each rank's RNG state,
    # which its resume needs (rng_state_1.pth), and the folders it is saved into
    other = [p for p in w1 if not (p.endswith("/rng_state_1.pth") or p.endswith("/"))]
    assert other == [], other
    assert all("/checkpoints/checkpoint-" in p for p in w1), w1


def test_two_processes_match_one_process(ddp: tuple[Path, dict[int, dict[str, Any]]]) -> None:
    tmp, ranks = ddp
    data = str(tmp / "dialogues.jsonl")
    assert ranks[0]["sft_steps"] == 4 and ranks[0]["dpo_steps"] == 8  # 8 pairs per epoch, batch 2, 2 epochs
    one = run_sft(settings("sft", tmp / "sft-1p", data=data, max_steps=4, seed=3, batch_size=2,
                           per_device_batch_size=2, **COMMON))
    assert one["global_step"] == 4
    a, b = adapter_weights(tmp / "sft-2p" / "adapter"), adapter_weights(tmp / "sft-1p" / "adapter")
    assert set(a) == set(b)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= WEIGHT_TOL
    assert any(float(v.abs().max()) > 1e-4 for k, v in a.items() if "lora_B" in k)  # it trained
    # DPO from the same SFT run, 1 process × batch 2
    run_dpo(settings("dpo", tmp / "dpo-1p", data=str(tmp / "pairs-data" / "dialogues.jsonl"), sft=str(tmp / "sft-2p"), model=None, epochs=2, save_steps=1,
                     seed=5, batch_size=2, per_device_batch_size=2, **COMMON))
    a, b = adapter_weights(tmp / "dpo-2p" / "adapter-dpo-only"), adapter_weights(tmp / "dpo-1p" / "adapter-dpo-only")
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff <= WEIGHT_TOL, diff
    assert json.loads((tmp / "dpo-2p" / "trainer_args.json").read_text())["per_device_train_batch_size"] == 1


def test_resume_under_two_processes(ddp: tuple[Path, dict[int, dict[str, Any]]]) -> None:
    tmp, ranks = ddp
    assert ranks[0]["stopped"] and ranks[1]["stopped"]
    # stopped in step 2's on_step_end, before its checkpoint: resumes from checkpoint-1
    assert ranks[0]["resumed_from"].endswith("checkpoint-1") and ranks[1]["resumed_from"] == ranks[0]["resumed_from"]
    a, b = adapter_weights(tmp / "dpo-2p" / "adapter-dpo-only"), adapter_weights(tmp / "dpo-2p-cut" / "adapter-dpo-only")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
