"""A random 2-layer Llama with SmolLM2's real tokenizer and chat template: small enough for unit
tests (a few MB, loads in well under a second), real enough to exercise chat templates,
masking, LoRA, SFT/DPO and generation end to end."""

from __future__ import annotations

import os
from pathlib import Path

from kyokan.cache import cache_dir
from kyokan.io import atomic_dir
from kyokan.models.packaged import SMOLLM2_GGUF, SMOLLM2_PACKAGE, package_dir


def packaged_tokenizer_dir() -> Path:
    """SmolLM2's tokenizer (with chat template), extracted once from the packaged GGUF."""
    target = cache_dir("tokenizers") / "smollm2-135m-instruct"

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(package_dir(SMOLLM2_PACKAGE)), gguf_file=SMOLLM2_GGUF)
        tok.save_pretrained(str(tmp))

    return atomic_dir(target, build)


def tiny_causal_lm(path: str | os.PathLike[str] | None = None, *, seed: int = 0, layers: int = 2,
                   hidden: int = 64) -> Path:
    """Write (once) a random Llama with the packaged tokenizer to ``path`` (default: the cache) and
    return the folder; ``AutoModelForCausalLM.from_pretrained(folder)`` loads it."""
    target = Path(path) if path is not None else cache_dir("models") / f"tiny-llama-l{layers}-h{hidden}-s{seed}"

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tok = AutoTokenizer.from_pretrained(str(packaged_tokenizer_dir()))
        torch.manual_seed(seed)
        cfg = LlamaConfig(
            vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(cfg)
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))

    return atomic_dir(target, build)
