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


def print_text(text: str) -> None:
    """Plain text on stdout as is: no wrapping at the terminal's width (Markdown tables stay one
    row a line, whatever the width or when piped), no markup."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


class RowProgress:
    """Per-row progress on stderr for anything that takes seconds: a live bar on a terminal;
    elsewhere (a pipe, a log file, CI) one plain line when the work starts, then at most one every
    ``every`` seconds, and one at the end — so a long run is never silent.

    Use as ``with RowProgress("judge") as p: p.start(total); ...; p.advance(status=...)``."""

    def __init__(self, label: str, *, unit: str = "rows", disable: bool = False, every: float = 10.0) -> None:
        self.label, self.unit, self.disable, self.every = label, unit, disable, every
        self.total: int | None = None
        self.done = 0
        self.status = ""
        self._live: Any = None
        self._task: Any = None
        self._t0 = 0.0
        self._last = 0.0

    def __enter__(self) -> RowProgress:
        import time

        self._t0 = self._last = time.monotonic()
        if not self.disable and err.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._live = Progress(TextColumn(f"[bold]{self.label}[/]"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=err, transient=True)
            self._live.__enter__()
            self._task = self._live.add_task(self.label, total=None, status="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
        elif not self.disable and self.total is not None and exc[0] is None and self.done and self.done != self.total:
            self._line()

    def start(self, total: int | None, note: str = "") -> None:
        """The number of rows to do now (``note``: e.g. how many an earlier run finished)."""
        self.total = total
        if self.disable:
            return
        if self._live is not None:
            self._live.update(self._task, total=total, status=note)
        else:
            err.print(f"{self.label}: {total if total is not None else '?'} {self.unit} to do"
                      + (f" ({note})" if note else ""), markup=False, highlight=False)

    def update(self, done: int, total: int | None = None, status: str = "") -> None:
        """Absolute progress (for callers that report ``done of total``)."""
        if total is not None and total != self.total:
            self.total = total
        self.advance(done - self.done, status)

    def advance(self, n: int = 1, status: str = "") -> None:
        import time

        self.done += n
        self.status = status or self.status
        if self.disable:
            return
        if self._live is not None:
            self._live.update(self._task, advance=n, total=self.total, status=self.status)
            return
        now = time.monotonic()
        if now - self._last >= self.every or (self.total is not None and self.done >= self.total):
            self._last = now
            self._line()

    def _line(self) -> None:
        import time

        el = time.monotonic() - self._t0
        of = f"/{self.total}" if self.total is not None else ""
        err.print(f"{self.label}: {self.done}{of} {self.unit}" + (f" · {self.status}" if self.status else "")
                  + f" · {el:.0f} s", markup=False, highlight=False)
