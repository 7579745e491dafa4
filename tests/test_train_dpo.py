"""DPO: per-epoch blocks, the SFT model as reference with no second copy, resume after a stop,
the combined SFT+DPO adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from kyokan.train import (
    EpochBlockSampler,
    RunDir,
    adapter_weights,
    build_dpo_trainer,
    run_dpo,
    run_sft,
)
from train_util import settings, short_dialogues


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("sft")
    data = short_dialogues(tmp, per_label=1)
    s = settings("sft", tmp / "sft", data=str(data), max_steps=2, lora_r=4, lora_alpha=8)
    run_sft(s)
    return data, tmp / "sft"


def test_epoch_block_sampler() -> None:
    blocks = [0] * 5 + [1] * 5 + [2] * 3
    a = list(EpochBlockSampler(blocks, seed=1))
    assert sorted(a[:5]) == [0, 1, 2, 3, 4] and sorted(a[5:10]) == [5, 6, 7, 8, 9] and sorted(a[10:]) == [10, 11, 12]
    assert a == list(EpochBlockSampler(blocks, seed=1)) and len(EpochBlockSampler(blocks, 1)) == 13
    assert a != list(EpochBlockSampler(blocks, seed=2))


def test_reference_is_sft_model_with_adapter_disabled(tmp_path: Path, sft_run: tuple[Path, Path]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data, sft = sft_run
    s = settings("dpo", tmp_path / "dpo", data=str(data), sft=str(sft), model=None, epochs=2)
    trainer, info = build_dpo_trainer(s, RunDir(s.output or ""))
    assert trainer.ref_model is None  # no second model in memory
    assert info["pairs_per_epoch"] == [4, 4]
    # the trainable adapter is DPO's only: the policy's frozen weights are base + SFT merged
    assert set(trainer.model.peft_config) == {"default"}
    ids = torch.tensor([[1, 500, 900, 42, 7]])
    base_path = json.loads((sft / "config.json").read_text())["model"]
    sft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(sft / "adapter")).eval()
    # make the DPO adapter non-trivial, so "disabled" is a real test
    with torch.no_grad():
        for n, p in trainer.model.named_parameters():
            if "lora_B" in n:
                p.add_(0.05)
    trainer.model.eval()
    with torch.no_grad():
        want = sft_model(ids).logits
        with trainer.model.disable_adapter():
            ref = trainer.model(ids).logits
        policy = trainer.model(ids).logits
    assert torch.allclose(ref, want, atol=1e-5)
    assert not torch.allclose(policy, want, atol=1e-3)


def stop_after(k: int) -> Any:
    """A callback that raises after optimizer step ``k`` (before its checkpoint is written): a kill."""
    from transformers import TrainerCallback

    class StopAfter(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == k:
                raise KeyboardInterrupt(f"stopped after step {k}")

    return StopAfter()


def test_dpo_resume_matches_uninterrupted_run(tmp_path: Path, sft_run: tuple[Path, Path]) -> None:
    """2 pair-epochs × 2 steps. Stopped after step 2 (checkpoint 1 on disk, mid pair-epoch 0), the
    same command resumes from checkpoint 1; the final adapters agree within 1e-6 (CPU, fp32)."""
    data, sft = sft_run
    kw = {"data": str(data), "sft": str(sft), "model": None, "epochs": 2, "save_steps": 1, "seed": 5,
          "lora_r": 4, "lora_alpha": 8}
    full = run_dpo(settings("dpo", tmp_path / "full", **kw))
    assert full["global_step"] == 4 and full["pairs_per_epoch"] == [4, 4]
    s = settings("dpo", tmp_path / "cut", **kw)
    with pytest.raises(KeyboardInterrupt):
        run_dpo(s, callbacks=[stop_after(2)])
    assert not (tmp_path / "cut" / "result.json").exists()
    assert RunDir(tmp_path / "cut").last_checkpoint().endswith("checkpoint-1")
    resumed = run_dpo(s)
    assert resumed["resumed_from"].endswith("checkpoint-1") and resumed["global_step"] == 4
    a = adapter_weights(tmp_path / "full" / "adapter-dpo-only")
    b = adapter_weights(tmp_path / "cut" / "adapter-dpo-only")
    assert set(a) == set(b)
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff <= 1e-6, diff
    assert any(float(v.abs().max()) > 0 for k, v in a.items() if "lora_B" in k)  # it did train
    # the loss curve tells which pair-epoch each step trained on
    curve = (tmp_path / "cut" / "loss.csv").read_text().splitlines()
    assert curve[0].startswith("step,epoch,pair_epoch,loss")
    assert [line.split(",")[2] for line in curve[1:5]] == ["0", "0", "1", "1"]


def test_combined_adapter_equals_sft_then_dpo(tmp_path: Path, sft_run: tuple[Path, Path]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data, sft = sft_run
    s = settings("dpo", tmp_path / "dpo", data=str(data), sft=str(sft), model=None, epochs=1, max_steps=1,
                 lora_r=4, lora_alpha=8, learning_rate=5e-2)
    res = run_dpo(s)
    assert res["adapter_kind"].startswith("sft+dpo combined")
    run = tmp_path / "dpo"
    base_path = json.loads((sft / "config.json").read_text())["model"]
    ids = torch.tensor([[1, 300, 77, 9000, 5]])
    with torch.no_grad():
        stacked = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(sft / "adapter"))
        stacked = stacked.merge_and_unload()
        stacked = PeftModel.from_pretrained(stacked, str(run / "adapter-dpo-only")).eval()
        combined = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(run / "adapter")).eval()
        assert torch.allclose(stacked(ids).logits, combined(ids).logits, atol=1e-5)
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["r"] == 8
    assert (run / "pairs" / "epoch-0.jsonl").is_file() and (run / "pairs" / "report.json").is_file()
