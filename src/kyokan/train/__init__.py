"""SFT and DPO on TRL + PEFT: presets as data, run folders that resume, per-epoch redrawn pairs,
the SFT model (adapter disabled) as DPO's reference."""

from kyokan.train.config import TrainSettings, load_config_file, preset, presets, resolve
from kyokan.train.dpo import EpochBlockSampler, build_dpo_trainer, load_pairs, run_dpo
from kyokan.train.modeling import combine_lora, resolve_model_path
from kyokan.train.run import RunDir, adapter_weights, versions
from kyokan.train.sft import build_sft_trainer, lora_config, run_sft, sft_examples

__all__ = [
    "EpochBlockSampler",
    "RunDir",
    "TrainSettings",
    "adapter_weights",
    "build_dpo_trainer",
    "build_sft_trainer",
    "combine_lora",
    "load_config_file",
    "load_pairs",
    "lora_config",
    "preset",
    "presets",
    "resolve",
    "resolve_model_path",
    "run_dpo",
    "run_sft",
    "sft_examples",
    "versions",
]
