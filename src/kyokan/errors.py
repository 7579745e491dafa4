"""User-facing errors: they name the file, line and field, and the CLI turns them into exit code 2."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one place of an input file."""

    path: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class KyokanError(Exception):
    """An error caused by the user's input or settings (never a bug): printed without traceback."""

    exit_code = 2


class InputError(KyokanError):
    """Bad input at a known place; ``problems`` lists every place found (possibly more than one)."""

    def __init__(self, problems: list[Problem] | Problem, total: int | None = None) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.total = total if total is not None else len(self.problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, path: str, line: int | None, field: str | None, message: str) -> InputError:
        return cls(Problem(str(path), line, field, message))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a mistyped ``word``, else ``""``:
    the one suggestion helper for unknown keys, flags and names."""
    import difflib

    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
