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
    out: dict[str, Any] = {}
    for p in paths:
        if p is None:
            continue
        q = Path(p)
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

    def last_checkpoint(self) -> str | None:
        if not self.checkpoints.is_dir():
            return None
        from transformers.trainer_utils import get_last_checkpoint

        ckpt = get_last_checkpoint(str(self.checkpoints))
        # a checkpoint cut by a kill lacks trainer_state.json (written last): fall back to the previous one
        while ckpt is not None and not (Path(ckpt) / "trainer_state.json").is_file():
            import shutil

            shutil.rmtree(ckpt, ignore_errors=True)
            ckpt = get_last_checkpoint(str(self.checkpoints))
        return ckpt

    def prepare(self, s: TrainSettings, *, overwrite: bool = False) -> None:
        """Check the folder is new, or holds an earlier attempt of this same run (then it resumes)."""
        cfg = self.path / "config.json"
        if not is_main_process():
            return  # rank 0 checks and writes; the others only train
        if overwrite and self.path.exists():
            import shutil

            for name in ("checkpoints", "adapter", "adapter-dpo-only", "merged", "result.json", "loss.csv",
                         "log_history.json", "config.json", "trainer_args.json", "provenance.json", "data"):
                p = self.path / name
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        if cfg.is_file():
            old = json.loads(cfg.read_text(encoding="utf-8"))
            new = s.training_key()
            oldk = {k: v for k, v in old.items() if k in new}
            diff = sorted(k for k in new if oldk.get(k) != new[k])
            if diff:
                raise KyokanError(f"{self.path} holds a run with other settings ({', '.join(diff)}); "
                                  "use another -o, or --overwrite to start it over")
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(cfg, s.to_dict())


def trainer_kwargs(s: TrainSettings, run: RunDir) -> dict[str, Any]:
    """Arguments common to SFTConfig and DPOConfig. On a CPU: use_cpu, fp32, no gradient
    checkpointing (TRL's defaults are wrong there). Effective batch = per-device batch × gradient
    accumulation × processes (``WORLD_SIZE`` under ``accelerate launch``)."""
    gpu = on_gpu()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per = min(s.per_device_batch_size, s.batch_size)
    accum = max(1, s.batch_size // (per * world))
    if per * accum * world != s.batch_size:
        raise KyokanError(f"batch_size {s.batch_size} is not per_device_batch_size {per} × gradient accumulation × "
                          f"{world} process(es); pick values that divide")
    precision = s.precision
    if precision == "auto":
        precision = "bf16" if gpu else "fp32"
    if not gpu:
        precision = "fp32"  # CPU: mixed precision is slow or unsupported; recorded in config
    gc = s.gradient_checkpointing if s.gradient_checkpointing is not None else gpu
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
        "gradient_checkpointing": gc,
        "max_length": s.max_length,
        "logging_steps": s.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": s.save_steps,
        "save_total_limit": s.save_total_limit,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "disable_tqdm": not sys.stderr.isatty(),
        "dataset_num_proc": None,
    }
    if s.optim:
        kw["optim"] = s.optim
    kw.update(s.trainer)
    return kw


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
