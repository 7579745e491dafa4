"""Where kyokan keeps converted models and other derived files: ``$KYOKAN_CACHE`` or
``~/.cache/kyokan`` (never inside the repository)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("KYOKAN_CACHE") or Path.home() / ".cache" / "kyokan")
    p = root.joinpath(*parts)
    p.mkdir(parents=True, exist_ok=True)
    return p
