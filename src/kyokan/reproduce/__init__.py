"""Published papers rebuilt from their released artifacts. A reproduction is one subpackage with a
``run`` function and its published values as data; ``REPRODUCTIONS`` names them for the CLI."""

from __future__ import annotations

#: name → "module:function" (imported on use, so `kyokan --help` stays instant)
REPRODUCTIONS: dict[str, str] = {"empo": "kyokan.reproduce.empo.run:reproduce_empo"}

__all__ = ["REPRODUCTIONS"]
