"""Reading validated dialogues and writing them in every supported layout."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kyokan.data.record import SCHEMA_VERSION, Dialogue
from kyokan.data.validate import iter_checked
from kyokan.errors import InputError, Problem
from kyokan.io import atomic_open, dumps


def read_records(path: str | Path, *, fmt: str | None = None, taxonomy: str | None = None,
                 allow_unlabelled: bool | None = None, max_problems: int = 20) -> Iterator[dict[str, Any]]:
    """Validated, normalised record dicts. Stops with ``InputError`` listing the problems found
    (after reading the whole input, so the user sees all of them at once, capped)."""
    problems: list[Problem] = []
    total = 0
    for c in iter_checked(str(path), fmt=fmt, taxonomy=taxonomy, allow_unlabelled=allow_unlabelled):
        if c.record is not None:
            if not problems:
                yield c.record
        else:
            total += len(c.problems)
            problems.extend(c.problems[: max(0, max_problems - len(problems))])
    if problems:
        raise InputError(problems, total)


def read_dialogues(path: str | Path, **kw: Any) -> Iterator[Dialogue]:
    for rec in read_records(path, **kw):
        yield Dialogue.from_dict(rec)


def load_dialogues(path: str | Path, **kw: Any) -> list[Dialogue]:
    """All dialogues of a file, validated; raises ``InputError`` before returning any on bad input."""
    return [Dialogue.from_dict(r) for r in list(read_records(path, **kw))]


def _as_dict(d: Dialogue | dict[str, Any]) -> dict[str, Any]:
    return d.to_dict() if isinstance(d, Dialogue) else d


def write_jsonl(path: str | Path, dialogues: Iterable[Dialogue | dict[str, Any]]) -> int:
    n = 0
    with atomic_open(path) as f:
        for d in dialogues:
            f.write(dumps(_as_dict(d)) + "\n")
            n += 1
    return n


def _table_rows(dialogues: Iterable[Dialogue | dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for d in dialogues:
        r = dict(_as_dict(d))
        r["meta"] = json.dumps(r.get("meta") or {}, ensure_ascii=False, sort_keys=True)
        yield r


def _arrow_schema() -> Any:
    import pyarrow as pa

    turn = pa.struct([("role", pa.string()), ("text", pa.string())])
    return pa.schema(
        [("id", pa.string()), ("situation_id", pa.string()), ("emotion", pa.string()), ("lang", pa.string()),
         ("situation", pa.string()), ("turns", pa.list_(turn)), ("meta", pa.string())],
        metadata={"kyokan_schema_version": str(SCHEMA_VERSION)},
    )


def write_parquet(path: str | Path, dialogues: Iterable[Dialogue | dict[str, Any]], batch: int = 4096) -> int:
    """Parquet with a fixed schema; ``meta`` is a JSON string (it has no fixed shape)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    n = 0
    with atomic_open(path, "wb", encoding=None) as f:
        writer = pq.ParquetWriter(f, schema)
        try:
            buf: list[dict[str, Any]] = []
            for r in _table_rows(dialogues):
                buf.append(r)
                if len(buf) >= batch:
                    writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                    n += len(buf)
                    buf = []
            if buf or n == 0:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                n += len(buf)
        finally:
            # closed here, while its file is open: on an input error the writer would otherwise be
            # closed by the garbage collector after the temp file is gone ("Exception ignored in ...")
            writer.close()
    return n


def write_hf(path: str | Path, dialogues: Iterable[Dialogue | dict[str, Any]]) -> int:
    """A ``datasets`` save_to_disk folder (written to a temp folder, then renamed into place)."""
    from datasets import Dataset, Features, List, Value

    from kyokan.io import atomic_dir

    feats = Features({
        "id": Value("string"), "situation_id": Value("string"), "emotion": Value("string"),
        "lang": Value("string"), "situation": Value("string"),
        "turns": List({"role": Value("string"), "text": Value("string")}), "meta": Value("string"),
    })
    rows = list(_table_rows(dialogues))
    ds = Dataset.from_list(rows, features=feats)
    # datasets refuses to save into an existing folder: build into a fresh one inside the temp dir
    atomic_dir(path, lambda tmp: ds.save_to_disk(str(tmp)), replace=True)
    return len(rows)


WRITERS = {"jsonl": write_jsonl, "parquet": write_parquet, "hf": write_hf}


def output_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt:
        return fmt
    s = str(path).lower()
    if s.endswith(".parquet"):
        return "parquet"
    if s.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "hf" if not Path(s).suffix else "jsonl"


def write_dialogues(path: str | Path, dialogues: Iterable[Dialogue | dict[str, Any]], fmt: str | None = None) -> int:
    f = output_format(path, fmt)
    if f not in WRITERS:
        raise InputError.at(str(path), None, None, f"cannot write format {f!r}; one of {', '.join(WRITERS)}")
    return WRITERS[f](path, dialogues)
