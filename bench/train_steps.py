"""Benchmark: kyokan SFT and DPO optimizer steps/s against a plain TRL script, same tiny model
(the random 2-layer Llama with SmolLM2's tokenizer), same data, same LoRA and batch (target ratio
≥ 0.95). Only ``trainer.train()`` is timed (model loading and tokenization are not); each side
runs ``--rounds`` times alternately and the best round counts (the machine is shared).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/train_steps.py [--steps 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def plain_trl_sft(model_path: str, rows: list[dict[str, Any]], out: Path, steps: int, s: Any) -> float:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=s.per_device_batch_size,
                     learning_rate=s.learning_rate, use_cpu=True, bf16=False, fp16=False,
                     gradient_checkpointing=False, max_length=s.max_length, report_to="none", save_strategy="no",
                     dataloader_num_workers=0, logging_steps=1, seed=s.seed, disable_tqdm=True)
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    tr = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                    peft_config=LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
                                           target_modules="all-linear", task_type="CAUSAL_LM"))
    t = time.perf_counter()
    tr.train()
    return steps / (time.perf_counter() - t)


def plain_trl_dpo(model_path: str, sft_adapter: Path, rows: list[dict[str, Any]], out: Path, steps: int, s: Any) -> float:
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tok = AutoTokenizer.from_pretrained(str(sft_adapter))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), str(sft_adapter)).merge_and_unload()
    args = DPOConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=s.per_device_batch_size,
                     learning_rate=s.learning_rate, beta=s.beta, use_cpu=True, bf16=False, fp16=False,
                     gradient_checkpointing=False, max_length=s.max_length, report_to="none", save_strategy="no",
                     dataloader_num_workers=0, logging_steps=1, seed=s.seed, disable_tqdm=True)
    ds = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])
    tr = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=ds, processing_class=tok,
                    peft_config=LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
                                           target_modules="all-linear", task_type="CAUSAL_LM"))
    t = time.perf_counter()
    tr.train()
    return steps / (time.perf_counter() - t)


def kyokan_steps(trainer: Any, steps: int) -> float:
    t = time.perf_counter()
    trainer.train()
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    from kyokan.train import (
        RunDir,
        build_dpo_trainer,
        build_sft_trainer,
        load_pairs,
        run_sft,
        sft_examples,
    )
    from train_util import settings, short_dialogues, tiny_model

    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        data = short_dialogues(tmp, per_label=4)
        common = {"save_steps": 10_000, "logging_steps": 1, "batch_size": 4, "per_device_batch_size": 4,
                  "max_length": 128}
        sft_s = settings("sft", tmp / "sft", data=str(data), max_steps=a.steps, **common)
        rows = sft_examples(sft_s)
        res: dict[str, list[float]] = {"kyokan sft": [], "trl sft": [], "kyokan dpo": [], "trl dpo": []}
        for r in range(a.rounds):
            run = RunDir(tmp / f"k-sft-{r}")
            run.prepare(sft_s, overwrite=True)
            tr, _ = build_sft_trainer(sft_s, run, examples=rows)
            res["kyokan sft"].append(kyokan_steps(tr, a.steps))
            res["trl sft"].append(plain_trl_sft(tiny_model(), rows, tmp / f"t-sft-{r}", a.steps, sft_s))
        # an SFT run to start DPO from
        sft_run = settings("sft", tmp / "sft-run", data=str(data), max_steps=2, **common)
        run_sft(sft_run)
        dpo_s = settings("dpo", tmp / "dpo", data=str(data), sft=str(tmp / "sft-run"), model=None, epochs=2,
                         max_steps=a.steps, **common)
        pr = RunDir(tmp / "pairs-run")
        pr.prepare(dpo_s, overwrite=True)
        epochs, _ = load_pairs(dpo_s, pr)
        flat = [row for ep in epochs for row in ep]
        for r in range(a.rounds):
            run = RunDir(tmp / f"k-dpo-{r}")
            run.prepare(dpo_s, overwrite=True)
            tr, _ = build_dpo_trainer(dpo_s, run, epochs=epochs)
            res["kyokan dpo"].append(kyokan_steps(tr, a.steps))
            res["trl dpo"].append(plain_trl_dpo(tiny_model(), tmp / "sft-run" / "adapter", flat,
                                                tmp / f"t-dpo-{r}", a.steps, dpo_s))
    print(f"train steps/s on the tiny Llama (CPU, batch 4, {a.steps} steps, best of {a.rounds}):")
    for stage in ("sft", "dpo"):
        k, t = max(res[f"kyokan {stage}"]), max(res[f"trl {stage}"])
        print(f"  {stage.upper()}: kyokan {k:.3f} steps/s, plain TRL {t:.3f} steps/s, ratio {k / t:.3f} (target ≥ 0.95)"
              f"   all rounds kyokan {[round(x, 3) for x in res[f'kyokan {stage}']]} trl {[round(x, 3) for x in res[f'trl {stage}']]}")


if __name__ == "__main__":
    main()
