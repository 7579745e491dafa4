"""Packaged offline models (``smollm2-135m``, ``gemma3-270m``): the GGUF inside a PyPI package,
converted once to safetensors (``kyokan.models.packaged.ensure_local``), run by the ``hf`` backend
with the chat template kyokan supplies when the model has none."""

from __future__ import annotations

import sys
from typing import Any

from kyokan.models.base import ChatModel, ModelError
from kyokan.models.packaged import get_packaged, manifest
from kyokan.models.registry import register_backend


@register_backend("packaged", help="packaged offline model by name: smollm2-135m, gemma3-270m")
def make_packaged(spec: str, target: str, *, base_url: str | None = None, api_key: str | None = None,
                  adapter: str | None = None, concurrency: int = 8, timeout: float = 60.0,
                  max_retries: int = 5, **kw: Any) -> ChatModel:
    """A packaged offline model by name (converted once, then loaded from the cache)."""
    from kyokan.models.backends.hf import HFChatModel
    from kyokan.models.packaged import ensure_local

    if base_url:
        raise ModelError(f"{target}: packaged models run locally; --base-url is for openai: specs")
    pm = get_packaged(target)
    # the first load converts for tens of seconds: say so on stderr unless the caller reports it
    progress = kw.pop("progress", None) or (lambda m: print(m, file=sys.stderr, flush=True))
    path = ensure_local(pm.name, progress=progress)
    kw.setdefault("chat_template", pm.chat_template)
    kw.setdefault("stop_tokens", pm.stop_tokens)
    extra = {"packaged": pm.name, "package": pm.distribution, "package_version": pm.version,
             "license": pm.license, "instruct": pm.instruct}
    m = manifest(pm.name) or {}
    extra["converted_with"] = {k: m.get(k) for k in ("transformers", "torch", "gguf", "converted_at")}
    return HFChatModel(str(path), adapter=adapter, name=pm.name, extra_info=extra, **kw)
