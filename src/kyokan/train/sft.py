"""SFT on TRL's SFTTrainer with conversational prompt/completion data: the loss covers the listener
turns only (TRL's completion-only loss masks the prompt), LoRA through PEFT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.io import write_json, write_jsonl
from kyokan.train.config import TrainSettings
from kyokan.train.run import (
    RunDir,
    data_checksums,
    is_main_process,
    provenance,
    trainer_kwargs,
    use_step_log,
    weights_dtype,
    write_loss_curve,
)


def lora_config(s: TrainSettings, task: str = "CAUSAL_LM") -> Any:
    from peft import LoraConfig

    tm = s.target_modules
    return LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout, target_modules=tm,
                      bias="none", task_type=task)


def _is_prompt_completion(path: Path) -> bool:
    if path.suffix.lower() not in (".jsonl", ".ndjson") or not path.is_file():
        return False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(row, dict) and "prompt" in row and "completion" in row
    return False


def sft_examples(s: TrainSettings) -> list[dict[str, Any]]:
    """Prompt/completion rows: one per listener turn of every dialogue (``turns="all"``) or per
    last listener turn; or the rows of a prompt/completion JSONL as they are."""
    from kyokan.data import load_dialogues
    from kyokan.prefs.pairs import listener_examples
    from kyokan.train.config import data_path

    assert s.data is not None
    p = data_path(s.data)
    if _is_prompt_completion(p):
        with open(p, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
    rows = []
    for d in load_dialogues(p, fmt=s.data_format, taxonomy=s.taxonomy, allow_unlabelled=True):
        rows.extend(listener_examples(d, s.system, s.turns))
    if not rows:
        raise KyokanError(f"{p}: no listener turn with a speaker turn before it: nothing to train on")
    return rows


def build_sft_trainer(s: TrainSettings, run: RunDir, *, callbacks: list[Any] | None = None,
                      examples: list[dict[str, Any]] | None = None) -> tuple[Any, dict[str, Any]]:
    """The SFTTrainer for these settings (model loaded, LoRA attached, data tokenized)."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from kyokan.train.modeling import load_causal_lm, load_tokenizer, resolve_model_path

    assert s.model is not None
    path, info = resolve_model_path(s.model)
    tok, template_source = load_tokenizer(path, s.chat_template)
    info["chat_template"] = template_source
    # TRL attaches LoRA before the Trainer seeds anything: seed first, so the adapter's random
    # init (and so the run) is the same for the same seed, on every rank and every rerun
    set_seed(s.seed)
    model = load_causal_lm(path, weights_dtype(s))
    rows = examples if examples is not None else sft_examples(s)
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    args = SFTConfig(**trainer_kwargs(s, run), completion_only_loss=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                         peft_config=lora_config(s), callbacks=callbacks)
    use_step_log(trainer, "sft", run)
    info["examples"] = len(rows)
    return trainer, info


def run_sft(s: TrainSettings, *, callbacks: list[Any] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train (or resume, or return the result of a finished run) and write the run folder.

    Under torchrun / accelerate launch every rank runs this; only rank 0 writes files. The inputs
    (data, model) are read before anything is written, so a mistake in them leaves no run folder
    that would refuse the corrected command."""
    run = RunDir(s.output or "")
    if not overwrite and run.check(s):  # finished with these settings; other settings raise
        res: dict[str, Any] = json.loads(run.result.read_text(encoding="utf-8"))
        res["already_complete"] = True
        return res
    rows = sft_examples(s)
    trainer, info = build_sft_trainer(s, run, callbacks=callbacks, examples=rows)
    run.prepare(s, overwrite=overwrite)
    if is_main_process():
        write_jsonl(run.path / "data" / "sft.jsonl", rows)
        write_json(run.path / "trainer_args.json", json.loads(trainer.args.to_json_string()))
        write_json(run.path / "provenance.json",
                   provenance(s, info, data_checksums(s.data, run.path / "data" / "sft.jsonl")))
    ckpt = None if overwrite else run.last_checkpoint()
    out = trainer.train(resume_from_checkpoint=ckpt)
    return finish(s, run, trainer, out, resumed_from=ckpt)


def finish(s: TrainSettings, run: RunDir, trainer: Any, out: Any, *, resumed_from: str | None,
           epoch_of_step: Any = None, extra: dict[str, Any] | None = None,
           write_result: bool = True) -> dict[str, Any]:
    import shutil

    from kyokan.train.run import is_main_process

    tmp = run.path / ".adapter.tmp"
    if is_main_process() and tmp.exists():
        shutil.rmtree(tmp)
    trainer.accelerator.wait_for_everyone()
    # save_model gathers ZeRO-3/FSDP shards and writes (adapter + tokenizer) on the main process only
    trainer.save_model(str(tmp))
    result: dict[str, Any] = {
        "stage": s.stage, "global_step": trainer.state.global_step, "train_loss": out.training_loss,
        "metrics": out.metrics, "adapter": str(run.adapter), "resumed_from": resumed_from,
        **(extra or {}),
    }
    if trainer.is_world_process_zero():
        if run.adapter.exists():
            shutil.rmtree(run.adapter)
        tmp.rename(run.adapter)
        write_loss_curve(run, trainer.state.log_history, epoch_of_step)
        if s.merge:
            result["merged"] = str(write_merged(trainer, run))
        if write_result:  # written last: its presence marks the run complete
            write_json(run.result, result)
    if write_result:
        # every rank returns once the run folder is complete, so whatever a rank does next (DPO on
        # this SFT run, the next pipeline stage) finds it finished
        trainer.accelerator.wait_for_everyone()
    return result


def write_merged(trainer: Any, run: RunDir) -> Path:

    from kyokan.io import atomic_dir

    model = trainer.model.merge_and_unload()

    def build(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        trainer.processing_class.save_pretrained(str(tmp))

    return atomic_dir(run.path / "merged", build, replace=True)
