"""`kyokan train sft|dpo|presets`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from kyokan.console import err, out, print_json

train_app = typer.Typer(help="SFT and DPO on TRL + PEFT (LoRA), resumable run folders, EmPO presets.",
                        no_args_is_help=True)

CONFIG_HELP = "TOML config file (same keys as the presets, plus a \\[trainer] table for TRL)."
#: help of the options SFT and DPO share (flags override the config file, which overrides the preset)
H = {
    "seed": "Seed of LoRA init, data order and dropout (default: the config's, else 0).",
    "epochs": "Training epochs.",
    "max_steps": "Stop after this many optimizer steps (overrides --epochs).",
    "lr": "Peak learning rate.",
    "batch_size": "Effective batch (per-device batch × gradient accumulation × processes).",
    "per_device_batch_size": "Examples per device per step (the rest of --batch-size is gradient accumulation).",
    "max_length": "Longest tokenized example; longer ones are truncated (SFT) or dropped (DPO).",
    "lora_r": "LoRA rank.",
    "lora_alpha": "LoRA scaling alpha.",
    "lora_dropout": "Dropout on the LoRA layers.",
    "save_steps": "Write a checkpoint (to resume from) every N steps.",
    "logging_steps": "Print a loss line (and log to RUN/train.log, loss.csv) every N steps.",
    "taxonomy": "Taxonomy of the dialogue labels.",
}


def _common(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def _run(stage: str, config: Path | None, overrides: dict[str, Any], overwrite: bool, json_: bool) -> None:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import contextlib
    import sys

    from kyokan.train.config import resolve

    s = resolve(stage, config=config, overrides=overrides)
    # the Trainer prints its logs on stdout: send them to stderr so stdout holds only our output
    with contextlib.redirect_stdout(sys.stderr):
        if stage == "sft":
            from kyokan.train.sft import run_sft

            res = run_sft(s, overwrite=overwrite)
        else:
            from kyokan.train.dpo import run_dpo

            res = run_dpo(s, overwrite=overwrite)
    from kyokan.train.run import is_main_process

    if not is_main_process():
        return  # under torchrun / accelerate launch one summary, from rank 0
    if json_:
        print_json(res)
        return
    if res.get("already_complete"):
        err.print(f"{s.output}: already complete (use --overwrite to train again)", markup=False)
    out.print(f"{s.output}: {stage} done, {res['global_step']} steps, train loss {res['train_loss']:.4f}; "
              f"adapter in {res['adapter']}" + (f", resumed from {res['resumed_from']}" if res.get("resumed_from") else ""))


@train_app.command("sft")
def sft_cmd(
    config: Path = typer.Option(None, "-c", "--config", help=CONFIG_HELP),
    preset: str = typer.Option(None, "--preset", help="empo | cpu-tiny (see `kyokan train presets`)."),
    model: str = typer.Option(None, "--model", "-m", help="Packaged name (smollm2-135m, gemma3-270m), local folder or cached hub id."),
    data: str = typer.Option(None, "--data", "-d", help="Dialogues (any layout `kyokan data` reads; bundled:ja / bundled:ed-en for the samples) or a prompt/completion JSONL."),
    output: str = typer.Option(None, "-o", "--output", help="Run folder (rerun the same command to resume)."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help="Taxonomy of the dialogue labels."),
    seed: int = typer.Option(None, "--seed", help=H["seed"]),
    system: str = typer.Option(None, "--system", help="System message put first in every prompt."),
    turns: str = typer.Option(None, "--turns", help="all: loss on every listener turn (EmPO); last: only the last."),
    chat_template: str = typer.Option(None, "--chat-template", help="Jinja file, 'gemma' or 'generic' (default: the model's, else by vocabulary)."),
    epochs: int = typer.Option(None, "--epochs", help=H["epochs"]),
    max_steps: int = typer.Option(None, "--max-steps", help=H["max_steps"]),
    lr: float = typer.Option(None, "--lr", help=H["lr"]),
    batch_size: int = typer.Option(None, "--batch-size", help=H["batch_size"]),
    per_device_batch_size: int = typer.Option(None, "--per-device-batch-size", help=H["per_device_batch_size"]),
    max_length: int = typer.Option(None, "--max-length", help=H["max_length"]),
    lora_r: int = typer.Option(None, "--lora-r", help=H["lora_r"]),
    lora_alpha: int = typer.Option(None, "--lora-alpha", help=H["lora_alpha"]),
    lora_dropout: float = typer.Option(None, "--lora-dropout", help=H["lora_dropout"]),
    target_modules: str = typer.Option(None, "--target-modules", help="'all-linear' or comma-separated module names."),
    save_steps: int = typer.Option(None, "--save-steps", help=H["save_steps"]),
    logging_steps: int = typer.Option(None, "--logging-steps", help=H["logging_steps"]),
    merge: bool = typer.Option(None, "--merge/--no-merge", help="Also write RUN/merged (the full model)."),
    report_to: str = typer.Option(None, "--report-to", help="Experiment tracker(s) for TRL: none (default), trackio, wandb, mlflow; comma-separated for several."),
    run_name: str = typer.Option(None, "--run-name", help="The tracker's run name."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start the run folder over."),
    json_: bool = typer.Option(False, "--json", help="Print result.json."),
) -> None:
    """Supervised fine-tuning with LoRA on prompt/completion conversations (loss on listener turns only).

    Example: kyokan train sft --preset cpu-tiny --model smollm2-135m --data dialogues.jsonl -o runs/sft
    Example: torchrun --standalone --nproc_per_node 2 -m kyokan train sft --preset cpu-tiny --model smollm2-135m --data bundled:ed-en --max-steps 2 -o runs/sft2
    Example: accelerate launch -m kyokan train sft -c examples/train_sft_empo.toml
    """
    tm = [t.strip() for t in target_modules.split(",")] if target_modules and target_modules != "all-linear" else target_modules
    _run("sft", config, _common(preset=preset, model=model, data=data, output=output, taxonomy=taxonomy, seed=seed,
                                system=system, turns=turns, chat_template=chat_template, epochs=epochs,
                                max_steps=max_steps, learning_rate=lr, batch_size=batch_size,
                                per_device_batch_size=per_device_batch_size, max_length=max_length, lora_r=lora_r,
                                lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=tm,
                                save_steps=save_steps, logging_steps=logging_steps, merge=merge,
                                report_to=_trackers(report_to), run_name=run_name),
         overwrite, json_)


def _trackers(v: str | None) -> str | list[str] | None:
    if v is None:
        return None
    parts = [p.strip() for p in v.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


@train_app.command("dpo")
def dpo_cmd(
    config: Path = typer.Option(None, "-c", "--config", help=CONFIG_HELP),
    preset: str = typer.Option(None, "--preset", help="empo | cpu-tiny."),
    sft: str = typer.Option(None, "--sft", help="The SFT run folder: its adapter is merged in and is DPO's reference."),
    model: str = typer.Option(None, "--model", "-m", help="Model (default: the SFT run's)."),
    pairs: str = typer.Option(None, "--pairs", help="Pairs folder from `kyokan prefs build` (epoch-K.jsonl)."),
    data: str = typer.Option(None, "--data", "-d", help="Or dialogues: the pairs are built into RUN/pairs."),
    strategy: str = typer.Option(None, "--strategy", help="With --data: opposite | same-situation."),
    output: str = typer.Option(None, "-o", "--output", help="Run folder (rerun the same command to resume)."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help=H["taxonomy"]),
    seed: int = typer.Option(None, "--seed", help=H["seed"]),
    system: str = typer.Option(None, "--system", help="With --data: system message in every prompt."),
    epochs: int = typer.Option(None, "--epochs", help="Pair epochs (one fresh draw each)."),
    max_steps: int = typer.Option(None, "--max-steps", help=H["max_steps"]),
    beta: float = typer.Option(None, "--beta", help="DPO beta: how far the policy may move from the SFT reference."),
    lr: float = typer.Option(None, "--lr", help=H["lr"]),
    batch_size: int = typer.Option(None, "--batch-size", help=H["batch_size"]),
    per_device_batch_size: int = typer.Option(None, "--per-device-batch-size", help=H["per_device_batch_size"]),
    max_length: int = typer.Option(None, "--max-length", help=H["max_length"]),
    lora_r: int = typer.Option(None, "--lora-r", help=H["lora_r"]),
    lora_alpha: int = typer.Option(None, "--lora-alpha", help=H["lora_alpha"]),
    save_steps: int = typer.Option(None, "--save-steps", help=H["save_steps"]),
    logging_steps: int = typer.Option(None, "--logging-steps", help=H["logging_steps"]),
    merge: bool = typer.Option(None, "--merge/--no-merge", help="Also write RUN/merged (base + SFT + DPO)."),
    report_to: str = typer.Option(None, "--report-to", help="Experiment tracker(s): none (default), trackio, wandb, mlflow."),
    run_name: str = typer.Option(None, "--run-name", help="The tracker's run name."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start the run folder over."),
    json_: bool = typer.Option(False, "--json", help="Print result.json."),
) -> None:
    """DPO from the SFT model on per-epoch redrawn pairs; reference = the SFT model (adapter disabled).

    Example: kyokan train dpo --preset cpu-tiny --sft runs/sft --pairs pairs/ -o runs/dpo
    Example: kyokan train dpo --preset empo --sft runs/sft --data train.jsonl --seed 13 -o runs/dpo
    Example: torchrun --standalone --nproc_per_node 2 -m kyokan train dpo --preset cpu-tiny --sft runs/sft2 --data bundled:ed-en --max-steps 2 -o runs/dpo2
    """
    _run("dpo", config, _common(preset=preset, sft=sft, model=model, pairs=pairs, data=data, strategy=strategy,
                                output=output, taxonomy=taxonomy, seed=seed, system=system, epochs=epochs,
                                max_steps=max_steps, beta=beta, learning_rate=lr, batch_size=batch_size,
                                per_device_batch_size=per_device_batch_size, max_length=max_length, lora_r=lora_r,
                                lora_alpha=lora_alpha, save_steps=save_steps, logging_steps=logging_steps,
                                merge=merge, report_to=_trackers(report_to), run_name=run_name),
         overwrite, json_)


@train_app.command("presets")
def presets_cmd(json_: bool = typer.Option(False, "--json", help="Print them as JSON instead of TOML.")) -> None:
    """Show the training presets as TOML, the keys a config file (-c) takes (data in
    kyokan/train/presets.toml).

    Example: kyokan train presets
    """
    from kyokan.train.config import presets

    p = presets()
    if json_:
        print_json(p)
        return
    sys.stdout.write(presets_toml(p))


def presets_toml(p: dict[str, dict[str, dict[str, Any]]]) -> str:
    """``[NAME.STAGE]`` tables of ``key = value`` lines (reads back with tomllib)."""
    from kyokan.pipeline.sweep import toml_value

    blocks = []
    for name, stages in p.items():
        for stage, vals in stages.items():
            lines = [f"[{json.dumps(name) if not name.replace('-', '').replace('_', '').isalnum() else name}.{stage}]"]
            lines += [f"{k} = {toml_value(v)}" for k, v in vals.items()]
            blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")


