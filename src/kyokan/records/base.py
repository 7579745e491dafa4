"""The base of every typed, versioned record kyokan writes and reads.

Each file a stage writes and another reads holds records of one ``kind`` (e.g.
``kyokan.judge.row``) at one ``version``: JSONL files a record per line, JSON files one record.
Writers build the models below; readers load them through :func:`read_rows` / :func:`read_record`,
which refuse a file of another kind or an unknown version with a message naming the file, line and
field. Fields are added, never renamed, within a version; a change of meaning bumps the version.

Pydantic (already kyokan's config library) gives validation with field locations for error
messages, JSON Schema export for users' own tools (``kyokan schema dump``) and, with
``extra="allow"``, room for fields a user's tool adds without breaking readers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from kyokan.errors import InputError, KyokanError, Problem

#: every record kind this kyokan reads: kind -> class
REGISTRY: dict[str, type[Record]] = {}

R = TypeVar("R", bound="Record")

MAX_PROBLEMS = 50


class Part(BaseModel):
    """A typed piece inside a record (not a file of its own); unknown fields are kept."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Record(BaseModel):
    """One record of a kind; ``KIND``/``VERSION`` are the class's own, ``kind``/``version`` the
    fields written to the file."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    #: what the file is, for `kyokan schema list` and error messages
    DESCRIPTION: ClassVar[str] = ""

    _path: str | None = PrivateAttr(default=None)
    _line: int | None = PrivateAttr(default=None)

    @property
    def where(self) -> str:
        """``path:line`` this record was read from (empty for records built in memory)."""
        if self._path is None:
            return ""
        return f"{self._path}:{self._line}" if self._line is not None else self._path

    @classmethod
    def declared(cls, obj: dict[str, Any]) -> tuple[Any, Any]:
        """The (kind, version) a raw object declares (a generated dialogue keeps them in
        ``meta.generation``)."""
        return obj.get("kind"), obj.get("version")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=False)


def register(cls: type[R]) -> type[R]:
    """Class decorator: make a record kind readable by :func:`read_rows`/`kyokan schema`."""
    if not cls.KIND:
        raise ValueError(f"{cls.__name__} has no KIND")
    if cls.KIND in REGISTRY and REGISTRY[cls.KIND] is not cls:
        raise ValueError(f"record kind {cls.KIND} registered twice")
    REGISTRY[cls.KIND] = cls
    return cls


def _loc(err: Any) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "(record)"


def _problems(path: str, line: int | None, e: ValidationError) -> list[Problem]:
    return [Problem(path, line, _loc(err), err.get("msg", "invalid")) for err in e.errors()[:5]]


def _check_kind(path: str, line: int | None, obj: dict[str, Any], classes: tuple[type[Record], ...]
                ) -> type[Record] | Problem:
    wanted = ", ".join(c.KIND for c in classes)
    kind, version = classes[0].declared(obj)
    if kind is None:
        for c in classes[1:]:
            kind, version = c.declared(obj)
            if kind is not None:
                break
    if kind is None:
        return Problem(path, line, "kind", f"missing: not a kyokan record (expected {wanted}); files written by "
                                           "kyokan < 0.2 have no kind — run the stage again")
    cls = next((c for c in classes if kind == c.KIND), None)
    if cls is None:
        known = "a known kind" if kind in REGISTRY else "a kind this kyokan does not know"
        return Problem(path, line, "kind", f"{kind!r} ({known}) where {wanted} was expected")
    if version != cls.VERSION:
        return Problem(path, line, "version", f"{kind} version {version!r}; this kyokan reads version {cls.VERSION}")
    return cls


def parse_record(obj: dict[str, Any], classes: tuple[type[Record], ...], path: str = "<memory>",
                 line: int | None = None) -> Record:
    """Validate one raw object as one of ``classes`` (InputError naming path, line and field)."""
    got = _check_kind(path, line, obj, classes)
    if isinstance(got, Problem):
        raise InputError(got)
    try:
        rec = got.model_validate(obj)
    except ValidationError as e:
        raise InputError(_problems(path, line, e)) from None
    rec._path, rec._line = path, line
    return rec


def iter_rows(path: str | os.PathLike[str], *classes: type[R]) -> Iterator[R]:
    """The records of a JSONL file, each validated as one of ``classes``. Every problem in the
    file is collected (up to 50 shown) and raised as one InputError after the last line."""
    from kyokan.io import iter_json_objects

    p = Path(path)
    if not p.is_file():
        raise InputError.at(str(p), None, None, "file not found")
    problems: list[Problem] = []
    total = 0
    out: list[R] = []
    try:
        for line, obj, problem in iter_json_objects(p):
            if obj is None:
                total += 1
                if len(problems) < MAX_PROBLEMS and problem is not None:
                    problems.append(problem)
                continue
            try:
                rec = parse_record(obj, classes, str(p), line)
            except InputError as e:
                total += 1
                problems.extend(e.problems[: max(0, MAX_PROBLEMS - len(problems))])
                continue
            out.append(rec)  # type: ignore[arg-type]
    except UnicodeDecodeError as e:
        raise InputError.at(str(p), None, None, f"not UTF-8 text ({e.reason})") from None
    if problems:
        raise InputError(problems, total)
    yield from out


def read_rows(path: str | os.PathLike[str], *classes: type[R]) -> list[R]:
    return list(iter_rows(path, *classes))


def read_record(path: str | os.PathLike[str], *classes: type[R]) -> R:
    """One JSON file holding one record of one of ``classes``."""
    import json

    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.at(str(p), None, None, "file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError.at(str(p), None, None, f"not a JSON file: {e}") from None
    if not isinstance(obj, dict):
        raise InputError.at(str(p), None, None, "expected a JSON object")
    return parse_record(obj, classes, str(p), None)  # type: ignore[return-value]


def declared_kind(path: str | os.PathLike[str]) -> str | None:
    """The kind the first record of a JSON/JSONL file declares (None when it declares none):
    read, not guessed, so a reader can choose among the kinds it accepts."""
    import json

    p = Path(path)
    if not p.is_file():
        raise InputError.at(str(p), None, None, "file not found")
    with open(p, encoding="utf-8-sig") as f:
        if p.suffix.lower() == ".json":
            try:
                obj = json.load(f)
            except json.JSONDecodeError:
                return None
            objs: Iterable[Any] = [obj]
        else:
            objs = (json.loads(line) for line in f if line.strip())
        try:
            first = next(iter(objs), None)
        except json.JSONDecodeError:
            return None
    if not isinstance(first, dict):
        return None
    for cls in REGISTRY.values():
        kind, _ = cls.declared(first)
        if kind is not None:
            return str(kind)
    return None


def write_rows(path: str | os.PathLike[str], records: Iterable[Record]) -> int:
    from kyokan.io import write_jsonl

    return write_jsonl(path, (r.to_json() for r in records))


def write_record(path: str | os.PathLike[str], record: Record) -> None:
    from kyokan.io import write_json

    write_json(path, record.to_json())


def record_class(kind: str) -> type[Record]:
    _load_all()
    try:
        return REGISTRY[kind]
    except KeyError:
        raise KyokanError(f"unknown record kind {kind!r}; known: {', '.join(sorted(REGISTRY))}") from None


def _load_all() -> None:
    import kyokan.records  # noqa: F401 - registers every kind


def json_schema(cls: type[Record]) -> dict[str, Any]:
    """The JSON Schema of a record kind, with its kind/version pinned and an ``$id`` naming them."""
    s = cls.model_json_schema(mode="serialization")
    s["$id"] = f"urn:kyokan:record:{cls.KIND}:v{cls.VERSION}"
    s.setdefault("description", cls.DESCRIPTION)
    return s
