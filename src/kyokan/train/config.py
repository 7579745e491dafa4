"""Training settings: a preset (data in presets.toml), then a TOML config file, then flags.

A config file holds the same keys as the presets, flat, plus an optional ``[trainer]`` table
passed verbatim to TRL's ``SFTConfig``/``DPOConfig`` (the escape hatch for anything kyokan does
not name)::

    preset = "cpu-tiny"
    model = "smollm2-135m"
    data = "dialogues.jsonl"
    output = "runs/sft"
    lora_r = 16

    [trainer]
    max_grad_norm = 0.5
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from kyokan.errors import KyokanError
from kyokan.paths import BUNDLED_PREFIX

Stage = Literal["sft", "dpo"]


@dataclass
class TrainSettings:
    stage: str = "sft"
    preset: str | None = None
    #: packaged name (smollm2-135m, gemma3-270m), local folder, or hub id (must be cached offline)
    model: str | None = None
    #: SFT: dialogue file (or prompt/completion JSONL); DPO: dialogues to build pairs from
    data: str | None = None
    data_format: str | None = None
    taxonomy: str | None = None
    #: DPO: a folder from `kyokan prefs build` (epoch-K.jsonl)
    pairs: str | None = None
    #: DPO: the SFT run folder whose adapter is merged into the model before DPO
    sft: str | None = None
    strategy: str = "opposite"
    output: str | None = None
    seed: int = 0
    system: str | None = None
    #: SFT: train on every listener turn ("all", as EmPO) or only the last ("last")
    turns: str = "all"
    chat_template: str | None = None
    epochs: int = 1
    max_steps: int = -1
    learning_rate: float = 2e-5
    batch_size: int = 8
    per_device_batch_size: int = 8
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    #: None: TRL/transformers' default AdamW (fused where torch has it)
    optim: str | None = None
    max_grad_norm: float = 1.0
    precision: str = "auto"
    gradient_checkpointing: bool | None = None
    max_length: int = 1024
    beta: float = 0.1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    logging_steps: int = 10
    save_steps: int = 100
    save_total_limit: int | None = 2
    merge: bool = False
    #: TRL/transformers ``report_to``: "none" (default), "trackio", "wandb", "mlflow", ... or a list
    report_to: str | list[str] = "none"
    #: the tracker's run name (the pipeline names it after the stage and its fingerprint)
    run_name: str | None = None
    trainer: dict[str, Any] = field(default_factory=dict)

    # keys that may change between a killed run and its restart without invalidating checkpoints
    # (nor the trained weights: tracking and logging do not touch them)
    VOLATILE = ("save_total_limit", "logging_steps", "merge", "output", "report_to", "run_name")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_key(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self.VOLATILE}


FIELD_NAMES = {f.name for f in fields(TrainSettings)}
ALIASES = {"lr": "learning_rate", "r": "lora_r", "alpha": "lora_alpha", "dropout": "lora_dropout",
           "num_train_epochs": "epochs", "per_device_train_batch_size": "per_device_batch_size"}


def presets() -> dict[str, dict[str, dict[str, Any]]]:
    text = (resources.files("kyokan.train") / "presets.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def preset(name: str, stage: str) -> dict[str, Any]:
    all_ = presets()
    if name not in all_:
        raise KyokanError(f"unknown preset {name!r}; one of {', '.join(sorted(all_))}")
    if stage not in all_[name]:
        raise KyokanError(f"preset {name!r} has no {stage} section")
    return dict(all_[name][stage])


def _normalise(d: dict[str, Any], where: str) -> dict[str, Any]:
    from kyokan.errors import did_you_mean

    out: dict[str, Any] = {}
    for k, v in d.items():
        if k == "lora" and isinstance(v, dict):  # [lora] table: r, alpha, dropout, target_modules
            for lk, lv in v.items():
                out[ALIASES.get(lk, lk if lk == "target_modules" else f"lora_{lk}")] = lv
            continue
        key = ALIASES.get(k, k).replace("-", "_")
        if key not in FIELD_NAMES:
            raise KyokanError(f"{where}: unknown setting {k!r}{did_you_mean(key, FIELD_NAMES | set(ALIASES))}")
        out[key] = v
    return out


#: settings that name a file or folder: in a config file, relative to that file (kyokan.paths)
PATH_KEYS = ("data", "pairs", "sft", "output")
#: settings that may name a file or folder, or something else (a packaged model, a hub id, "gemma")
MAYBE_PATH_KEYS = ("model", "chat_template")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML config file; its relative paths are relative to the file."""
    from kyokan.paths import in_config_dir, load_toml

    data, _ = load_toml(path)
    vals = _normalise(data, str(path))
    for k in PATH_KEYS + MAYBE_PATH_KEYS:
        if isinstance(vals.get(k), str):
            vals[k] = in_config_dir(vals[k], path, maybe=k in MAYBE_PATH_KEYS)
    return vals


def resolve(stage: str, *, config: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainSettings:
    """preset < config file < overrides (``None`` values in overrides are ignored)."""
    file_vals = load_config_file(config) if config else {}
    over = _normalise({k: v for k, v in (overrides or {}).items() if v is not None}, "flags")
    if "stage" in file_vals and file_vals["stage"] != stage:
        raise KyokanError(f"{config}: stage = {file_vals['stage']!r}, but this is `kyokan train {stage}`")
    name = over.get("preset") or file_vals.get("preset")
    vals: dict[str, Any] = {}
    if name:
        vals.update(_normalise(preset(name, stage), f"preset {name}"))
    vals.update(file_vals)
    vals.update(over)
    vals["stage"] = stage
    if vals.get("data") == f"{BUNDLED_PREFIX}ed-en" and not vals.get("taxonomy"):
        vals["taxonomy"] = "ed32"  # the bundled EmpatheticDialogues sample's labels
    trainer = dict(vals.pop("trainer", {}) or {})
    s = TrainSettings(**vals, trainer=trainer)
    _check(s)
    return s


def data_path(spec: str, flag: str = "--data") -> Path:
    """The file behind a ``--data``/``--pairs`` value: a path, or ``bundled:ja`` / ``bundled:ed-en``
    (the samples shipped with kyokan, as in run configs). A missing file is a user error."""
    from kyokan.paths import resolve_data_spec

    return resolve_data_spec(spec, what=flag)


def _check(s: TrainSettings) -> None:
    if not s.model and not (s.stage == "dpo" and s.sft):
        raise KyokanError("no model: give --model (a packaged name, a local folder or a hub id)"
                          + (" or --sft RUN_DIR" if s.stage == "dpo" else ""))
    if not s.output:
        raise KyokanError("no run folder: give -o/--output")
    if s.stage == "sft" and not s.data:
        raise KyokanError("no training data: give --data DIALOGUES")
    if s.stage == "dpo" and not (s.pairs or s.data):
        raise KyokanError("no preference data: give --pairs DIR (from `kyokan prefs build`) or --data DIALOGUES")
    if s.turns not in ("all", "last"):
        raise KyokanError(f"turns must be 'all' or 'last', got {s.turns!r}")
    if s.precision not in ("auto", "bf16", "fp16", "fp32"):
        raise KyokanError(f"precision must be auto, bf16, fp16 or fp32, got {s.precision!r}")
    for k in ("batch_size", "per_device_batch_size", "epochs", "lora_r", "max_length", "save_steps", "logging_steps"):
        if int(getattr(s, k)) < 1:
            raise KyokanError(f"{k} must be at least 1")

