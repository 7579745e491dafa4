"""How kyokan reads the paths users give: one rule for paths written in config files, one
resolver for dataset specs, and the test for "this can only be a local path".

- A relative path written in a config file (train ``-c`` configs, run and sweep configs) is
  relative to **that config file**, wherever the command runs from. Paths given as flags, and
  defaults nobody wrote, are relative to the current folder.
- A dataset spec is a path or ``bundled:NAME`` (the samples shipped with kyokan: ``bundled:ja``,
  ``bundled:ed-en``); every command that reads dialogues accepts both.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from kyokan.errors import InputError

BUNDLED_PREFIX = "bundled:"


def is_bundled(spec: str | os.PathLike[str]) -> bool:
    return str(spec).startswith(BUNDLED_PREFIX)


def looks_like_path(spec: str) -> bool:
    """True when ``spec`` can only mean a local path (``./x``, ``../x``, ``/x``, ``~/x``, ``a/b/c``),
    not a hub id (``org/name``) nor a packaged model name."""
    return (spec.startswith((".", "/", "~")) or os.path.isabs(spec) or spec.count("/") > 1
            or "\\" in spec)


def in_config_dir(value: str, config: str | os.PathLike[str] | None, *, maybe: bool = False) -> str:
    """A path written in the config file ``config``, made relative to that file's folder.

    ``maybe=True`` is for values that may be a path or a name (a model spec, ``hf:PATH``, a chat
    template name): they are resolved only when the config-relative path exists or the value can
    only be a path. ``bundled:`` specs, absolute paths and ``config=None`` are returned unchanged."""
    if config is None or not isinstance(value, str) or not value or is_bundled(value):
        return value
    prefix, v = ("hf:", value[3:]) if maybe and value.startswith("hf:") else ("", value)
    if maybe and not prefix and ":" in v.split("/", 1)[0]:
        return value  # openai:MODEL, vllm:MODEL, ...
    p = Path(v).expanduser()
    if p.is_absolute():
        return prefix + str(p)
    cand = Path(os.path.normpath(Path(config).absolute().parent / p))
    if maybe and not (cand.exists() or looks_like_path(v)):
        return value
    return prefix + str(cand)


def resolve_data_spec(spec: str | os.PathLike[str], *, what: str = "--data") -> Path:
    """The file or folder behind a dataset spec: ``bundled:NAME`` or an existing path. A missing one
    is a user error naming ``what`` (the flag or config key) and the path."""
    s = str(spec)
    if is_bundled(s):
        from kyokan.data.samples import sample_path

        return sample_path(s[len(BUNDLED_PREFIX):])
    p = Path(s).expanduser()
    if not p.exists():
        raise InputError.at(s, None, None, f"no such file or folder ({what})")
    return p


def load_toml(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """A TOML config file's table and text; unreadable or invalid TOML is a user error naming the
    file and line."""
    import re

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError.at(str(p), None, None, f"cannot read config: {e.strerror}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise InputError.at(str(p), int(m.group(1)) if m else None, None, f"not valid TOML: {e}") from None
