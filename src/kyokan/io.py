"""Small file helpers every stage uses: atomic writes (files and folders), a file lock,
appendable JSONL, stable JSON."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from kyokan.errors import Problem
from kyokan.provenance import sha256_file

__all__ = ["JsonlAppender", "atomic_dir", "atomic_open", "dumps", "file_lock", "iter_json_objects", "read_jsonl_done",
           "read_rows", "repair_torn_tail", "sha256_file", "sidecar", "write_json", "write_jsonl", "write_text"]

#: data extensions a sidecar name drops (``dialogues.jsonl`` → ``dialogues.<kind>.json``)
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".tsv")


def sidecar(out: str | Path, kind: str, ext: str = ".json") -> Path:
    """The one naming rule for files that go with an output file OUT: beside it, OUT's data
    extension replaced by ``.<kind><ext>`` — ``judged.jsonl`` → ``judged.summary.json``,
    ``clean.jsonl`` → ``clean.rejects.jsonl``, ``export.jsonl`` → ``export.provenance.json``.
    (An output that is a folder holds its files under fixed names instead: ``OUT/summary.json``.)"""
    p = Path(out)
    name = p.name
    for suffix in DATA_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(f"{name}.{kind}{ext}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dumps(obj: Any) -> str:
    """JSON for files: UTF-8 (not escaped), stable key order as given."""
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temp file beside ``path`` and rename it into place only when the block succeeds,
    so a crash or kill never leaves a half-written output."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if "b" in mode:
            f: IO[Any] = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding, newline="\n")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask like open()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> int:
    n = 0
    with atomic_open(path) as f:
        for row in rows:
            f.write(dumps(row))
            f.write("\n")
            n += 1
    return n


class JsonlAppender:
    """Appends one JSON row per line and flushes each, for long jobs that resume: a killed job
    keeps every finished row, and a torn last line (killed mid-write) is cut off on reopen."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115

    def write(self, row: Any) -> None:
        self._f.write(dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_torn_tail(path: Path) -> None:
    """Drop an unterminated last line (a write cut by a kill) so appends start on a clean line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        # walk back to the previous newline
        pos = size - 1
        chunk = 65536
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            i = buf.rfind(b"\n")
            if i >= 0:
                f.truncate(start + i + 1)
                return
            pos = start
        f.truncate(0)


def iter_json_objects(path: str | os.PathLike[str], encoding: str = "utf-8-sig") -> Iterator[tuple[int, dict[str, Any] | None, Problem | None]]:
    """Each non-blank line of a JSONL file as (line number, object, None), or (line number, None,
    problem) when the line is not JSON or not a JSON object. Callers decide whether a problem is
    an error (user input) or a line to skip (a torn row of an appending job)."""
    p = str(path)
    with open(path, encoding=encoding) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, None, Problem(p, n, None, f"malformed JSON: {e.msg} (column {e.colno})")
                continue
            if not isinstance(obj, dict):
                yield n, None, Problem(p, n, None, "expected a JSON object")
                continue
            yield n, obj, None


def read_rows(path: str | os.PathLike[str], key: str = "id") -> list[dict[str, Any]]:
    """The well-formed rows (objects with ``key``) of an appending job's output; a missing file is
    empty and torn or foreign lines are skipped."""
    if not Path(path).exists():
        return []
    return [obj for _, obj, _ in iter_json_objects(path) if obj is not None and key in obj]


def read_jsonl_done(path: str | os.PathLike[str], key: str = "id") -> set[str]:
    """Keys of rows already written by an earlier (possibly killed) run of an appending job."""
    return {str(r[key]) for r in read_rows(path, key)}


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) on ``path`` for the block: processes that build the
    same cached folder wait for each other instead of racing."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def atomic_dir(target: str | os.PathLike[str], build: Callable[[Path], None], *, marker: str | None = None,
               replace: bool = False) -> Path:
    """Build a folder in a temp folder beside ``target`` and rename it into place, under a lock
    (``<target>.lock``), so a crash never leaves a half-built folder and two processes never build
    it at once. ``target`` counts as done when it exists (or, with ``marker``, when it holds that
    file — a folder without it is an incomplete leftover and is rebuilt); ``replace=True`` always
    rebuilds."""
    t = Path(target)

    def done() -> bool:
        return not replace and (t / marker).is_file() if marker else (not replace and t.exists())

    if done():
        return t
    t.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(t.with_name(t.name + ".lock")):
        if done():  # another process finished while we waited
            return t
        tmp = Path(tempfile.mkdtemp(prefix=f".{t.name}.", dir=t.parent))
        try:
            build(tmp)
            if t.exists():  # an incomplete leftover, or replace=True
                shutil.rmtree(t) if t.is_dir() else t.unlink()
            os.replace(tmp, t)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return t
