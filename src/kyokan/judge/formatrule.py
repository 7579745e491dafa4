"""The format rule (EmplifAI §5.1): a generated dialogue that broke the requested format is rated
the lowest on every metric, without asking the judge.

A record breaks the format when ``meta.generation.format_ok`` is ``false``, or when its turns are
not exactly the expected speaker/listener exchanges (speaker, listener, speaker, listener for the
paper's two-exchange dialogues), or a turn's text is empty.
"""

from __future__ import annotations

from typing import Any

#: EmplifAI's dialogues are two exchanges: speaker, listener, speaker, listener
DEFAULT_EXCHANGES = 2


def format_violation(record: dict[str, Any], exchanges: int = DEFAULT_EXCHANGES) -> str | None:
    """Why the record breaks the format, or None when it does not. ``exchanges=0`` accepts any
    number (at least one) of speaker→listener exchanges."""
    meta = record.get("meta")
    gen = meta.get("generation") if isinstance(meta, dict) else None
    if isinstance(gen, dict) and gen.get("format_ok") is False:
        why = gen.get("reason") or gen.get("format_error")
        return f"meta.generation.format_ok is false{f' ({why})' if why else ''}"
    turns = record.get("turns")
    if not isinstance(turns, list) or not turns:
        return "no turns"
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            return f"turns[{i}] is not an object"
        role, text = t.get("role"), t.get("text")
        want = "speaker" if i % 2 == 0 else "listener"
        if role != want:
            return f"turns[{i}].role is {role!r}, expected {want!r} (speaker/listener alternate, speaker first)"
        if not isinstance(text, str) or not text.strip():
            return f"turns[{i}].text is empty"
    if len(turns) % 2:
        return f"{len(turns)} turns: the last speaker turn has no listener reply"
    n = len(turns) // 2
    if exchanges and n != exchanges:
        return f"{n} exchange(s), expected {exchanges}"
    return None


def response_length(record: dict[str, Any]) -> int:
    """Characters the system wrote as the listener (whitespace excluded): the x of the length-bias
    diagnostic. For a generated reply (``meta.generation.task == "response"``) only the last
    listener turn is the model's — the turns before it are the human-written context."""
    turns = record.get("turns")
    if not isinstance(turns, list):
        return 0
    listener = [t["text"] for t in turns
                if isinstance(t, dict) and t.get("role") == "listener" and isinstance(t.get("text"), str)]
    meta = record.get("meta")
    gen = meta.get("generation") if isinstance(meta, dict) else None
    if isinstance(gen, dict) and gen.get("task") == "response":
        listener = listener[-1:]
    return sum(1 for text in listener for ch in text if not ch.isspace())
