"""The run folder of one training stage, and what SFT and DPO share: TRL arguments, provenance,
the loss curve, resuming.

    RUN/
      config.json        resolved kyokan settings (preset < config file < flags)
      trainer_args.json  the TRL SFTConfig/DPOConfig actually used
      provenance.json    seed, model (spec, path, file hashes), package versions, data checksums, command
      checkpoints/       TRL/transformers checkpoints (adapter + optimizer + scheduler + RNG states)
      adapter/           the final LoRA adapter + tokenizer (with its chat template)
      merged/            optional: the full model with the adapter merged in
      loss.csv           step, epoch, loss, learning rate, ... per logged step (JSON: log_history.json)
      train.log          one line per logged step, as printed on stderr while training
      result.json        written last: the run is complete
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.io import atomic_open, write_json
from kyokan.provenance import package_versions, sha256_file
from kyokan.train.config import TrainSettings

PACKAGES = ("kyokan", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "numpy", "safetensors")


def versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **package_versions(PACKAGES, missing=True)}


def data_checksums(*paths: str | Path | None) -> dict[str, Any]:
    from kyokan.train.config import BUNDLED_PREFIX, data_path

    out: dict[str, Any] = {}
    for p in paths:
        if p is None:
            continue
        q = data_path(str(p)) if str(p).startswith(BUNDLED_PREFIX) else Path(p)
        if q.is_file():
            out[str(q)] = {"sha256": sha256_file(q), "bytes": q.stat().st_size}
        elif q.is_dir():
            out[str(q)] = {f.name: sha256_file(f) for f in sorted(q.iterdir()) if f.is_file() and f.suffix in (".jsonl", ".json", ".parquet", ".arrow", ".csv")}
    return out


def is_main_process() -> bool:
    """Rank 0 under `accelerate launch`/torchrun (RANK), or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


def on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.adapter = self.path / "adapter"
        self.result = self.path / "result.json"

    def is_complete(self) -> bool:
        return self.result.is_file()

    def has_training_state(self) -> bool:
        """A finished run, or checkpoints of a started one: what other settings must not overwrite.
        (A config.json alone is an attempt that failed before training: it blocks nothing.)"""
        return self.is_complete() or (self.checkpoints.is_dir() and any(self.checkpoints.glob("checkpoint-*")))

    def settings_diff(self, s: TrainSettings) -> list[str]:
        """Training settings that differ from the run recorded in config.json ([] when none is)."""
        cfg = self.path / "config.json"
        if not cfg.is_file():
            return []
        old = json.loads(cfg.read_text(encoding="utf-8"))
        new = s.training_key()
        return sorted(k for k in new if old.get(k) != new[k])

    def check(self, s: TrainSettings) -> bool:
        """True when this folder holds the finished run of these settings; raises when it holds a
        finished or started run of other settings. Read-only, so every rank can call it."""
        if not self.has_training_state():
            return False
        diff = self.settings_diff(s)
        if diff:
            raise KyokanError(f"{self.path} holds a run with other settings ({', '.join(diff)}); "
                              "use another -o, or --overwrite to start it over")
        return self.is_complete()

    def last_checkpoint(self) -> str | None:
        """The newest complete checkpoint. One cut by a kill lacks trainer_state.json (written
        last): it is skipped, and rank 0 removes it (the other ranks only read, so every rank
        picks the same checkpoint)."""
        if not self.checkpoints.is_dir():
            return None
        import re
        import shutil

        found = []
        for p in self.checkpoints.iterdir():
            m = re.fullmatch(r"checkpoint-(\d+)", p.name)
            if m and p.is_dir():
                found.append((int(m.group(1)), p))
        for _, p in sorted(found, reverse=True):
            if (p / "trainer_state.json").is_file():
                return str(p)
            if is_main_process():
                shutil.rmtree(p, ignore_errors=True)
        return None

    def clear(self) -> None:
        """--overwrite: remove every output of an earlier run (rank 0 only)."""
        if not is_main_process() or not self.path.exists():
            return
        import shutil

        for name in ("checkpoints", "adapter", "adapter-dpo-only", "merged", "result.json", "loss.csv",
                     "log_history.json", "train.log", "config.json", "trainer_args.json", "provenance.json", "data", "pairs",
                     ".adapter.tmp", ".stacked.tmp", ".merged.tmp"):
            p = self.path / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def prepare(self, s: TrainSettings, *, overwrite: bool = False) -> None:
        """Check the folder is new, or holds an earlier attempt of this same run (then it resumes),
        and record the settings. Called once the inputs are known to be good, so a mistake in them
        leaves nothing behind; rank 0 checks and writes, the others only train."""
        if not is_main_process():
            return
        if overwrite:
            self.clear()
        else:
            self.check(s)
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "config.json", s.to_dict())


def derive_batch(s: TrainSettings, world: int) -> tuple[int, int]:
    """(per-device batch, gradient accumulation) for the effective ``batch_size`` over ``world``
    processes. ``per_device_batch_size`` is an upper bound (memory): the largest per-device batch
    not above it that divides ``batch_size / world`` is used, so a preset runs unchanged on 1 or
    N processes (cpu-tiny's batch 4 = 4 × 1 × 1 on one process, 2 × 1 × 2 under torchrun -n 2)."""
    if s.batch_size % world:
        raise KyokanError(f"batch_size {s.batch_size} cannot be split over {world} processes; "
                          "pick a multiple of the number of processes")
    per_rank = s.batch_size // world
    per = max(d for d in range(1, min(s.per_device_batch_size, per_rank) + 1) if per_rank % d == 0)
    return per, per_rank // per


def weights_dtype(s: TrainSettings) -> str:
    """The dtype the frozen base weights are loaded in: bf16/fp16 on a GPU when training in that
    precision (half the memory of fp32; PEFT keeps the LoRA weights in fp32), fp32 on a CPU."""
    if not on_gpu():
        return "fp32"
    return {"auto": "bf16", "bf16": "bf16", "fp16": "fp16"}.get(s.precision, "fp32")


def trainer_kwargs(s: TrainSettings, run: RunDir) -> dict[str, Any]:
    """Arguments common to SFTConfig and DPOConfig. On a CPU: use_cpu, fp32, no gradient
    checkpointing (TRL's defaults are wrong there). Effective batch = per-device batch × gradient
    accumulation × processes (``WORLD_SIZE`` under ``torchrun`` / ``accelerate launch``)."""
    gpu = on_gpu()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per, accum = derive_batch(s, world)
    precision = s.precision
    if precision == "auto":
        precision = "bf16" if gpu else "fp32"
    if not gpu:
        precision = "fp32"  # CPU: mixed precision is slow or unsupported; recorded in config
    gc = s.gradient_checkpointing if s.gradient_checkpointing is not None else gpu
    # transformers 5 renamed gradient_checkpointing (the old name warns a FutureWarning)
    gc_key = "activation_checkpointing" if _has_training_arg("activation_checkpointing") else "gradient_checkpointing"
    kw: dict[str, Any] = {
        "output_dir": str(run.checkpoints),
        "seed": s.seed,
        "data_seed": s.seed,
        "learning_rate": s.learning_rate,
        "per_device_train_batch_size": per,
        "gradient_accumulation_steps": accum,
        "num_train_epochs": s.epochs,
        "max_steps": s.max_steps,
        "lr_scheduler_type": s.lr_scheduler,
        "warmup_steps": float(s.warmup_ratio) if s.warmup_ratio < 1 else int(s.warmup_ratio),
        "weight_decay": s.weight_decay,
        "max_grad_norm": s.max_grad_norm,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": not gpu,
        gc_key: gc,
        "max_length": s.max_length,
        "logging_steps": s.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": s.save_steps,
        "save_total_limit": s.save_total_limit,
        "report_to": s.report_to,
        "dataloader_num_workers": 0,
        # progress and logs are kyokan's StepLog lines (the bar and raw log dicts are not)
        "disable_tqdm": True,
        "dataset_num_proc": None,
    }
    if s.run_name:
        kw["run_name"] = s.run_name
    if s.optim:
        kw["optim"] = s.optim
    kw.update(s.trainer)
    return kw


def _has_training_arg(name: str) -> bool:
    import dataclasses

    from transformers import TrainingArguments

    return any(f.name == name for f in dataclasses.fields(TrainingArguments))


def step_log_callback(stage: str, run: RunDir) -> Any:
    """A TrainerCallback printing one line per logged step on stderr (``sft: step 3/10 · loss
    2.31 · lr 1.0e-04 · epoch 0.12 · 4 s``), the same lines into ``RUN/train.log``, and a
    ``step N/M`` line at most every 30 s between logged steps, so a slow run is never silent."""
    import time

    from transformers import TrainerCallback

    class StepLog(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.t0 = self.last = time.monotonic()

        def _emit(self, state: Any, text: str) -> None:
            if not state.is_world_process_zero:
                return
            self.last = time.monotonic()
            line = f"{stage}: {text} · {self.last - self.t0:.0f} s"
            print(line, file=sys.stderr, flush=True)
            with open(run.path / "train.log", "a", encoding="utf-8") as f:
                f.write(line + "\n")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = self.last = time.monotonic()
            start = f" from step {state.global_step}" if state.global_step else ""
            self._emit(state, f"training {state.max_steps} steps{start}")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if time.monotonic() - self.last >= 30:
                self._emit(state, f"step {state.global_step}/{state.max_steps}")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            logs = dict(logs or {})
            if "train_runtime" in logs:  # the closing summary
                loss = logs.get("train_loss")
                self._emit(state, f"done, {state.global_step} steps" + (f", train loss {loss:.4f}" if isinstance(loss, float) else ""))
                return
            parts = [f"step {state.global_step}/{state.max_steps}"]
            for key, label, fmt in (("loss", "loss", ".4g"), ("eval_loss", "eval loss", ".4g"),
                                    ("rewards/accuracies", "reward acc", ".2f"), ("rewards/margins", "margin", ".3g"),
                                    ("learning_rate", "lr", ".1e"), ("grad_norm", "grad norm", ".3g"),
                                    ("epoch", "epoch", ".2f")):
                v = logs.get(key)
                if isinstance(v, (int, float)):
                    parts.append(f"{label} {v:{fmt}}")
            self._emit(state, " · ".join(parts))

    return StepLog()


def use_step_log(trainer: Any, stage: str, run: RunDir) -> None:
    """Replace the Trainer's printer/progress callbacks (raw log dicts, tqdm) with :func:`step_log_callback`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(step_log_callback(stage, run))


def write_loss_curve(run: RunDir, log_history: list[dict[str, Any]], epoch_of_step: Any = None) -> None:
    rows = [dict(r) for r in log_history if "loss" in r or "train_loss" in r]
    if epoch_of_step is not None:
        for r in rows:
            if "step" in r:
                r["pair_epoch"] = epoch_of_step(int(r["step"]))
    write_json(run.path / "log_history.json", log_history)
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    first = [k for k in ("step", "epoch", "pair_epoch", "loss", "learning_rate", "grad_norm") if k in keys]
    cols = first + [k for k in keys if k not in first]
    with atomic_open(run.path / "loss.csv") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def provenance(s: TrainSettings, model_info: dict[str, Any], data: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from kyokan.train.modeling import folder_fingerprint

    mi = dict(model_info)
    p = Path(mi.get("path", ""))
    if p.is_dir():
        mi["files"] = folder_fingerprint(p)
    return {"seed": s.seed, "stage": s.stage, "model": mi, "data": data, "versions": versions(),
            "command": sys.argv, "device": "cuda" if on_gpu() else "cpu",
            "world_size": int(os.environ.get("WORLD_SIZE", "1")), **(extra or {})}


def adapter_weights(adapter_dir: str | Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
