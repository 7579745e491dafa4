"""Models for training: resolve a model spec to a folder, load it with a chat template, merge an
SFT adapter, combine LoRA adapters exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.provenance import sha256_file

#: for base models without a chat template and without Gemma's turn tokens
GENERIC_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] | trim + '\n' }}"
    "{%- if message['role'] == 'assistant' -%}{{ eos_token }}{{ '\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)


def resolve_model_path(spec: str) -> tuple[Path, dict[str, Any]]:
    """A packaged name (converted once to safetensors), a local folder, ``hf:<path or id>``, or a
    hub id already in the local cache (nothing is downloaded)."""
    from kyokan.models.packaged import PACKAGED, ensure_local, manifest

    s = spec[3:] if spec.startswith("hf:") else spec
    if s in PACKAGED:
        path = ensure_local(s)
        return path, {"spec": spec, "kind": "packaged", "path": str(path), "manifest": manifest(s)}
    p = Path(s).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise KyokanError(f"{p}: not a model folder (no config.json)")
        return p.resolve(), {"spec": spec, "kind": "local", "path": str(p.resolve())}
    if p.exists():
        raise KyokanError(f"{p}: a model must be a folder (config.json + weights)")
    from kyokan.paths import looks_like_path

    if looks_like_path(s):
        raise KyokanError(f"model {spec!r}: no such folder")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(s, local_files_only=True)
    except Exception as e:
        raise KyokanError(f"model {spec!r} is neither a packaged model ({', '.join(sorted(PACKAGED))}), a folder, "
                          f"nor a hub id in the local cache (no download happens here): {type(e).__name__}") from None
    return Path(local), {"spec": spec, "kind": "hub-cache", "path": str(local), "hub_id": s}


def folder_fingerprint(path: Path) -> dict[str, Any]:
    """SHA-256 of the small files (config, tokenizer, template), sizes of the weights."""
    out: dict[str, Any] = {}
    for f in sorted(path.iterdir()):
        if not f.is_file():
            continue
        if f.suffix in (".safetensors", ".bin", ".gguf", ".pt", ".pth"):
            out[f.name] = {"bytes": f.stat().st_size}
        elif f.stat().st_size < 50_000_000:
            out[f.name] = {"sha256": sha256_file(f)}
    return out


def chat_template_for(tok: Any, choice: str | None) -> tuple[str | None, str]:
    """The template to set (None: keep the tokenizer's) and where it came from."""
    if choice:
        p = Path(choice)
        if p.is_file():
            return p.read_text(encoding="utf-8"), f"file:{p}"
        if choice == "gemma":
            from kyokan.models.packaged import GEMMA_CHAT_TEMPLATE

            return GEMMA_CHAT_TEMPLATE, "kyokan-gemma"
        if choice == "generic":
            return GENERIC_TEMPLATE, "kyokan-generic"
        raise KyokanError(f"chat_template {choice!r}: not a file, 'gemma' or 'generic'")
    if getattr(tok, "chat_template", None):
        return None, "model"
    if "<start_of_turn>" in tok.get_vocab():
        from kyokan.models.packaged import GEMMA_CHAT_TEMPLATE

        return GEMMA_CHAT_TEMPLATE, "kyokan-gemma"
    return GENERIC_TEMPLATE, "kyokan-generic"


def load_tokenizer(path: Path, chat_template: str | None = None) -> tuple[Any, str]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    tmpl, source = chat_template_for(tok, chat_template)
    if tmpl is not None:
        tok.chat_template = tmpl
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok, source


def load_causal_lm(path: Path, dtype: str = "fp32") -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dt)


def merge_adapter(model: Any, adapter_dir: Path) -> Any:
    """The model with a LoRA adapter merged into its weights (a plain model again)."""
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").is_file():
        raise KyokanError(f"{adapter_dir}: no adapter_config.json (not a finished SFT run?)")
    return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def combine_lora(first: Path, second: Path, out: Path, base_model: str) -> bool:
    """Write one LoRA adapter equal to applying ``first`` then ``second`` (trained on the model with
    ``first`` merged): since both are additive, W + s1·B1A1 + s2·B2A2 = W + [s1·B1 | s2·B2][A1; A2],
    a rank r1+r2 adapter with scaling 1. Returns False (writes nothing) when the two adapters do not
    target the same modules or use options this cannot express (rsLoRA, DoRA, modules_to_save)."""
    import torch
    from safetensors.torch import load_file, save_file

    c1 = json.loads((first / "adapter_config.json").read_text(encoding="utf-8"))
    c2 = json.loads((second / "adapter_config.json").read_text(encoding="utf-8"))
    for c in (c1, c2):
        if c.get("use_rslora") or c.get("use_dora") or c.get("modules_to_save") or c.get("rank_pattern") \
                or c.get("alpha_pattern") or c.get("peft_type") != "LORA":
            return False
    w1 = load_file(str(first / "adapter_model.safetensors"))
    w2 = load_file(str(second / "adapter_model.safetensors"))
    if set(w1) != set(w2):
        return False
    s1 = c1["lora_alpha"] / c1["r"]
    s2 = c2["lora_alpha"] / c2["r"]
    out_w: dict[str, Any] = {}
    for k in w1:
        if ".lora_A." in k:
            out_w[k] = torch.cat([w1[k], w2[k]], dim=0).contiguous()
        elif ".lora_B." in k:
            out_w[k] = torch.cat([w1[k] * s1, w2[k] * s2], dim=1).contiguous()
        else:
            return False
    r = int(c1["r"]) + int(c2["r"])
    cfg = dict(c1)
    cfg.update({"r": r, "lora_alpha": r, "lora_dropout": 0.0, "base_model_name_or_path": base_model,
                "target_modules": sorted(set(_as_list(c1.get("target_modules"))) | set(_as_list(c2.get("target_modules"))))})
    out.mkdir(parents=True, exist_ok=True)
    save_file(out_w, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return True


def _as_list(x: Any) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)
