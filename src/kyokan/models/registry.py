"""Model specs → backends. A backend is one file: ``kyokan/models/backends/<prefix>.py`` that calls
:func:`register_backend`, found on first use of its prefix; third-party packages can register
through the ``kyokan.backends`` entry-point group (``prefix = "pkg.module:factory"``).

Specs a user types::

    openai:<model>          any OpenAI-compatible endpoint (base_url, key from the environment)
    hf:<hub id or path>     local transformers model (optionally with a LoRA adapter)
    vllm:<hub id or path>   vLLM offline batch engine (GPU; optional extra)
    smollm2-135m            packaged offline models (see ``kyokan.models.packaged``)
    gemma3-270m
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kyokan.models.base import ChatModel, ModelError

#: factory(spec, target, **options) -> ChatModel; ``target`` is the part after ``prefix:``
BackendFactory = Callable[..., ChatModel]


@dataclass(frozen=True)
class Backend:
    prefix: str
    factory: BackendFactory
    help: str = ""


_BACKENDS: dict[str, Backend] = {}
#: built-in backends: prefix -> module (imported on first use, so `kyokan --help` stays fast)
_BUILTIN = {
    "openai": "kyokan.models.backends.openai",
    "hf": "kyokan.models.backends.hf",
    "vllm": "kyokan.models.backends.vllm",
    "packaged": "kyokan.models.backends.packaged",
}
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")


def register_backend(prefix: str, help: str = "") -> Callable[[BackendFactory], BackendFactory]:
    """Decorator: ``@register_backend("myapi")`` makes ``myapi:<target>`` specs build with it."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"backend prefix must be lower-case letters, digits, '-' or '_': {prefix!r}")

    def deco(factory: BackendFactory) -> BackendFactory:
        _BACKENDS[prefix] = Backend(prefix, factory, help or (factory.__doc__ or "").strip().split("\n")[0])
        return factory

    return deco


def _find_backend(prefix: str) -> Backend | None:
    if prefix in _BACKENDS:
        return _BACKENDS[prefix]
    module = _BUILTIN.get(prefix)
    if module is None and _PREFIX_RE.match(prefix):
        module = f"kyokan.models.backends.{prefix.replace('-', '_')}"
    if module is not None:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    if prefix not in _BACKENDS:
        _load_entry_points()
    return _BACKENDS.get(prefix)


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="kyokan.backends"):
        if ep.name not in _BACKENDS:
            try:
                register_backend(ep.name)(ep.load())
            except Exception:  # a broken plugin must not break the built-in backends
                continue


def available_backends() -> dict[str, Backend]:
    """All known backends (built-ins are imported to be listed)."""
    for prefix in _BUILTIN:
        _find_backend(prefix)
    _load_entry_points()
    return dict(sorted(_BACKENDS.items()))


def parse_spec(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o-mini"`` → ``("openai", "gpt-4o-mini")``; a packaged name → ``("packaged", name)``."""
    spec = spec.strip()
    if not spec:
        raise ModelError("empty model spec (try smollm2-135m, hf:PATH, openai:MODEL)")
    from kyokan.models.packaged import PACKAGED

    if spec in PACKAGED:
        return "packaged", spec
    prefix, sep, target = spec.partition(":")
    if not sep or not prefix or "/" in prefix or "\\" in prefix:
        known = ", ".join(sorted(PACKAGED))
        raise ModelError(f"unknown model spec {spec!r}: use PREFIX:TARGET (openai:, hf:, vllm:) or a "
                         f"packaged model ({known})")
    if not target:
        raise ModelError(f"model spec {spec!r} names no model after {prefix}:")
    return prefix.lower(), target


def load_model(spec: str, *, base_url: str | None = None, api_key: str | None = None,
               adapter: str | None = None, concurrency: int = 8, timeout: float = 60.0,
               max_retries: int = 5, **kw: Any) -> ChatModel:
    """Build a :class:`ChatModel` from a spec string.

    ``base_url``/``api_key``/``timeout``/``max_retries`` matter to HTTP backends, ``adapter`` (a
    LoRA folder) to local ones; ``concurrency`` bounds calls in flight (HTTP) — local backends
    batch instead (``batch_size=`` in ``kw``). Other keyword options go to the backend.
    """
    prefix, target = parse_spec(spec)
    backend = _find_backend(prefix)
    if backend is None:
        known = ", ".join(sorted(set(_BUILTIN) - {"packaged"} | set(_BACKENDS) - {"packaged"}))
        raise ModelError(f"unknown model backend {prefix!r} in {spec!r} (known: {known}; or a packaged "
                         "model name: see `kyokan models list`)")
    model = backend.factory(spec, target, base_url=base_url, api_key=api_key, adapter=adapter,
                            concurrency=concurrency, timeout=timeout, max_retries=max_retries, **kw)
    model.spec = spec
    return model
