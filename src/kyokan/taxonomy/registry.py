"""Where taxonomies come from: the built-in JSON files, any ``*.json`` a user registers, or a path.

Adding a taxonomy is adding a file (see docs/taxonomy.md): drop a JSON file in the form of
``builtin/goemotions28.json`` into a folder named by ``KYOKAN_TAXONOMY_PATH`` or pass its path
wherever a taxonomy name is accepted."""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path

from kyokan.errors import KyokanError
from kyokan.taxonomy.model import Taxonomy

DEFAULT_TAXONOMY = "goemotions28"
_extra: dict[str, Taxonomy] = {}


def _builtin_files() -> dict[str, Path]:
    root = resources.files("kyokan.taxonomy") / "builtin"
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".json")}


def _user_files() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder in filter(None, os.environ.get("KYOKAN_TAXONOMY_PATH", "").split(os.pathsep)):
        for p in sorted(Path(folder).glob("*.json")):
            out[p.stem] = p
    return out


def register(taxonomy: Taxonomy) -> None:
    """Make a taxonomy built in code available by name for this process."""
    _extra[taxonomy.name] = taxonomy
    get_taxonomy.cache_clear()


def available() -> list[str]:
    return sorted({*_builtin_files(), *_user_files(), *_extra})


def load_taxonomy_file(path: str | os.PathLike[str]) -> Taxonomy:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))
        return Taxonomy.from_dict(data)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise KyokanError(f"{p}: not a valid taxonomy file: {e}") from None


@cache
def get_taxonomy(name: str = DEFAULT_TAXONOMY) -> Taxonomy:
    """A taxonomy by name (built-in or registered) or by path to a JSON file."""
    if name in _extra:
        return _extra[name]
    files = {**_builtin_files(), **_user_files()}
    if name in files:
        return load_taxonomy_file(files[name])
    if name.endswith(".json") or os.sep in name:
        return load_taxonomy_file(name)
    raise KyokanError(f"unknown taxonomy {name!r}; available: {', '.join(available())}")
