"""Shared CLI plumbing: consoles, JSON output, turning user errors into exit code 2."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def fail(message: str, code: int = 2) -> None:
    """Print a user error (no traceback) and exit."""
    err.print(message, markup=False)
    raise SystemExit(code)
