"""Helpers shared by the models and generate tests."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from kyokan.models.base import Message


def user(text: str, system: str | None = None) -> list[Message]:
    msgs: list[Message] = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": text})
    return msgs


def last_user(request: dict) -> str:
    return next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")


def torch_threads(n: int):  # type: ignore[no-untyped-def]
    """Generator for a fixture: run with ``n`` torch threads, then restore. On this shared 2-core
    machine one thread is ~10× faster for tiny models (no OpenMP spin-waiting under load)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
