"""Readers: every supported layout streams raw records as (line, dict) pairs.

Formats: kyokan JSONL / CSV / Parquet, the EmpatheticDialogues release CSVs, KokoroChat JSON
(a file or a folder of files), and a Hugging Face ``datasets`` save_to_disk folder.
Memory stays flat with file size: JSONL and CSV are read line by line, Parquet batch by batch,
``datasets`` through its memory-mapped Arrow files.

Byte-level problems (encoding, binary, empty) are raised as ``InputError`` naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kyokan.errors import InputError, Problem

FORMATS = ("jsonl", "json", "csv", "parquet", "ed", "kokorochat", "hf")


@dataclass
class RawRecord:
    """A record as read, before validation. ``line`` is 1-based (for Parquet/datasets: row + 1)."""

    path: str
    line: int
    data: Any
    error: Problem | None = None  # set when the line itself could not be parsed


def local_path(path: str | Path) -> Path:
    """The file behind a dataset spec: a path, or ``bundled:NAME`` (kyokan.paths)."""
    from kyokan.paths import is_bundled, resolve_data_spec

    return resolve_data_spec(path) if is_bundled(path) else Path(path)


def detect_format(path: str | Path) -> str:
    p = local_path(path)
    if not p.exists():
        raise InputError.at(str(p), None, None, "no such file or folder")
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "state.json").exists() or (p / "dataset_dict.json").exists():
            return "hf"
        if any(p.glob("*.json")):
            return "kokorochat"
        raise InputError.at(str(p), None, None, "folder is neither a datasets save_to_disk folder nor KokoroChat JSON files")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".json":
        with open(p, "rb") as f:
            head = f.read(256).lstrip(b"\xef\xbb\xbf \t\r\n")
        return "json" if head.startswith(b"[") else "kokorochat"
    if suffix in (".csv", ".tsv"):
        with open(p, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf")
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip().lower()
        if first.startswith("conv_id,utterance_idx"):
            return "ed"
        return "csv"
    return "jsonl"


# --- byte-level checks -------------------------------------------------------------

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _encoding_problem(path: str, raw: bytes, line: int) -> Problem:
    """Say which encoding an undecodable line looks like, so the user knows what to convert."""
    if raw.startswith(_UTF16_BOMS) or raw.count(b"\x00") > len(raw) // 4:
        return Problem(path, line, None, "file is UTF-16, not UTF-8; convert it (e.g. iconv -f UTF-16 -t UTF-8)")
    for enc, name in (("cp932", "Shift_JIS (CP932)"), ("euc_jp", "EUC-JP")):
        try:
            raw.decode(enc)
        except UnicodeDecodeError:
            continue
        return Problem(path, line, None, f"not valid UTF-8; it looks like {name}: convert it (e.g. iconv -f {enc.upper()} -t UTF-8)")
    try:
        raw.decode("latin-1")
        return Problem(path, line, None, "not valid UTF-8 (looks like Latin-1/Windows-1252); convert it to UTF-8")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        return Problem(path, line, None, "not valid UTF-8")


def _check_head(path: str, f: IO[bytes]) -> None:
    head = f.read(8192)
    f.seek(0)
    if not head:
        raise InputError.at(path, None, None, "file is empty")
    if head.startswith(_UTF16_BOMS):
        raise InputError(_encoding_problem(path, head, 1))
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if even.count(0) > 0.9 * len(even) or odd.count(0) > 0.9 * len(odd):  # UTF-16 without a BOM
            raise InputError.at(path, None, None, "file looks like UTF-16 (no BOM), not UTF-8; convert it (e.g. iconv -f UTF-16LE -t UTF-8)")
        raise InputError.at(path, None, None, "binary file (NUL bytes), not text")
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    if ctrl > len(head) // 10:
        raise InputError.at(path, None, None, "binary file, not text")


def iter_lines(path: str | Path) -> Iterator[tuple[int, str | None, bytes]]:
    """(line number, decoded text or None when it is not UTF-8, raw bytes), BOM and CRLF removed."""
    p = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise InputError.at(p, None, None, f"cannot open: {e.strerror}") from None
    with f:
        _check_head(p, f)
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            try:
                yield n, raw.decode("utf-8"), raw
            except UnicodeDecodeError:
                yield n, None, raw


# --- kyokan JSONL ------------------------------------------------------------------

def read_jsonl(path: str | Path) -> Iterator[RawRecord]:
    p = str(path)
    saw_any = False
    for n, text, raw in iter_lines(path):
        if text is None:
            saw_any = True
            yield RawRecord(p, n, raw.decode("utf-8", "replace"), _encoding_problem(p, raw, n))
            continue
        if not text.strip():
            continue
        saw_any = True
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            yield RawRecord(p, n, text, Problem(p, n, None, f"malformed JSON: {e.msg} (column {e.colno})"))
            continue
        yield RawRecord(p, n, obj)
    if not saw_any:
        raise InputError.at(p, None, None, "file has no records (only blank lines)")


# --- a JSON array of records --------------------------------------------------------

def read_json_array(path: str | Path) -> Iterator[RawRecord]:
    """A ``.json`` file holding one array of kyokan records (read whole: JSON arrays cannot be
    streamed line by line); each record's line is where it starts in the file."""
    p = str(path)
    with open(path, "rb") as f:
        _check_head(p, f)
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(_encoding_problem(p, raw, 1)) from None
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            raise InputError.at(p, text.count("\n", 0, n) + 1, None, "malformed JSON: the array is not closed")
        if text[i] == "]":
            return
        line = text.count("\n", 0, i) + 1
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            yield RawRecord(p, e.lineno, None, Problem(p, e.lineno, None, f"malformed JSON: {e.msg} (column {e.colno})"))
            return
        yield RawRecord(p, line, obj)
        i = end


# --- kyokan CSV --------------------------------------------------------------------

def csv_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str] | None, Problem | None]]:
    """Rows of a headed CSV/TSV as (line, {column: cell}, problem) with the data tools' encoding and
    shape checks; shared by other CSV inputs (e.g. human ratings)."""
    p = str(path)
    lines = iter_lines(path)

    def texts() -> Iterator[str]:
        for n, text, raw in lines:
            if text is None:
                raise InputError(_encoding_problem(p, raw, n))
            yield text + "\n"

    delim = "\t" if p.lower().endswith(".tsv") else ","
    reader = csv.reader(texts(), delimiter=delim)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError.at(p, None, None, "file is empty") from None
    header = [h.strip() for h in header]
    last = reader.line_num
    for row in reader:
        # a record starts on the line after the previous one ended (quoted cells may span lines):
        # problems point at its first line, where a user looks for it
        n, last = last + 1, reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            yield n, None, Problem(p, n, None, f"row has {len(row)} columns, header has {len(header)}")
            continue
        yield n, dict(zip(header, row, strict=True)), None


def read_csv(path: str | Path) -> Iterator[RawRecord]:
    """kyokan CSV: columns id, situation_id, emotion, lang, situation, turns (JSON list), meta (JSON
    object, optional). ``turns`` may instead be spread over columns speaker_1, listener_1, speaker_2, …"""
    p = str(path)
    for n, row, problem in csv_rows(path):
        if problem is not None or row is None:
            yield RawRecord(p, n, None, problem)
            continue
        rec: dict[str, Any] = {k: v for k, v in row.items() if k not in ("turns", "meta") and not _is_turn_col(k)}
        if "emotion" in rec and rec["emotion"] == "":
            rec["emotion"] = ""
        try:
            if "turns" in row:
                rec["turns"] = json.loads(row["turns"]) if row["turns"].strip() else []
            else:
                rec["turns"] = _turns_from_columns(row)
            if row.get("meta", "").strip():
                rec["meta"] = json.loads(row["meta"])
        except json.JSONDecodeError as e:
            field = "turns" if "turns" in row and not _valid_json(row["turns"]) else "meta"
            yield RawRecord(p, n, None, Problem(p, n, field, f"malformed JSON in CSV cell: {e.msg}"))
            continue
        yield RawRecord(p, n, rec)


def _valid_json(s: str) -> bool:
    try:
        json.loads(s)
        return True
    except json.JSONDecodeError:
        return False


def _is_turn_col(k: str) -> bool:
    head, _, num = k.rpartition("_")
    return head in ("speaker", "listener") and num.isdigit()


def _turns_from_columns(row: dict[str, str]) -> list[dict[str, str]]:
    cols = sorted((int(k.rpartition("_")[2]), 0 if k.startswith("speaker") else 1, k) for k in row if _is_turn_col(k))
    return [{"role": k.rpartition("_")[0], "text": row[k]} for _, _, k in cols if row[k].strip()]


# --- Parquet -------------------------------------------------------------------------

def read_parquet(path: str | Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    p = str(path)
    try:
        pf = pq.ParquetFile(p)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        raise InputError.at(p, None, None, f"not a readable Parquet file: {e}") from None
    n = 0
    for batch in pf.iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            n += 1
            yield RawRecord(p, n, _from_table_row(row))


def _from_table_row(row: dict[str, Any]) -> dict[str, Any]:
    """Parquet and ``datasets`` store meta as a JSON string (free-form dicts have no fixed schema)."""
    out = dict(row)
    meta = out.get("meta")
    if isinstance(meta, str):
        with contextlib.suppress(json.JSONDecodeError):  # left as a string: validation reports it
            out["meta"] = json.loads(meta) if meta else {}
    elif meta is None and "meta" in out:
        out["meta"] = {}
    return out


# --- Hugging Face datasets folder -------------------------------------------------------

def read_hf(path: str | Path, split: str | None = None) -> Iterator[RawRecord]:
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise InputError.at(str(path), None, None, "reading a datasets folder needs `pip install kyokan[hf]`") from None
    p = str(path)
    try:
        ds = load_from_disk(p)
    except Exception as e:
        raise InputError.at(p, None, None, f"not a datasets save_to_disk folder: {e}") from None
    if isinstance(ds, DatasetDict):
        names = [split] if split else list(ds.keys())
        parts = [(f"{p}[{s}]", ds[s]) for s in names]
    else:
        parts = [(p, ds)]
    for label, d in parts:
        for i, row in enumerate(d, 1):
            yield RawRecord(label, i, _from_table_row(dict(row)))


# --- EmpatheticDialogues -----------------------------------------------------------------

def _ed_text(s: str) -> str:
    return s.replace("_comma_", ",").strip()


def read_ed(path: str | Path) -> Iterator[RawRecord]:
    """EmpatheticDialogues release CSV: one row per utterance, commas written as ``_comma_``,
    fields never quoted. Rows of one conversation are contiguous; they are ordered by
    ``utterance_idx``; roles alternate starting with the speaker who wrote the situation."""
    p = str(path)
    header: list[str] | None = None
    group: list[tuple[int, list[str]]] = []
    seen: dict[str, int] = {}

    def flush() -> Iterator[RawRecord]:
        if not group:
            return
        first_line, first = group[0]
        conv = first[0]
        if conv in seen:
            yield RawRecord(p, first_line, None, Problem(p, first_line, "conv_id",
                            f"conversation {conv!r} continues here after other rows (first at line {seen[conv]}); rows of one conversation must be contiguous"))
            return
        seen[conv] = first_line
        try:
            rows = sorted(group, key=lambda r: int(r[1][1]))
        except ValueError:
            bad = next(n for n, r in group if not r[1].strip().isdigit())
            yield RawRecord(p, bad, None, Problem(p, bad, "utterance_idx", "not an integer"))
            return
        idx = [int(r[1][1]) for r in rows]
        if idx != list(range(idx[0], idx[0] + len(idx))):
            yield RawRecord(p, first_line, None, Problem(p, first_line, "utterance_idx",
                            f"conversation {conv!r} has utterance_idx {idx}: missing or repeated"))
            return
        emotions = {r[1][2].strip() for r in rows}
        if len(emotions) > 1:
            yield RawRecord(p, first_line, None, Problem(p, first_line, "context",
                            f"conversation {conv!r} has several emotions: {sorted(emotions)}"))
            return
        first_speaker = rows[0][1][4]
        turns = [{"role": "speaker" if i % 2 == 0 else "listener", "text": _ed_text(r[1][5])}
                 for i, r in enumerate(rows)]
        rec = {
            "id": conv,
            "situation_id": conv,
            "emotion": rows[0][1][2].strip(),
            "lang": "en",
            "situation": _ed_text(rows[0][1][3]),
            "turns": turns,
            "meta": {"source": "empathetic_dialogues", "speaker_idx": first_speaker,
                     "lines": [n for n, _ in rows]},
        }
        yield RawRecord(p, first_line, rec)

    for n, text, raw in iter_lines(path):
        if text is None:
            yield RawRecord(p, n, None, _encoding_problem(p, raw, n))
            continue
        if not text.strip():
            continue
        if header is None:
            header = text.split(",")
            if header[:2] != ["conv_id", "utterance_idx"]:
                raise InputError.at(p, 1, None, "not an EmpatheticDialogues CSV (header must start conv_id,utterance_idx)")
            continue
        cells = text.split(",")
        if len(cells) < 6:
            yield RawRecord(p, n, None, Problem(p, n, None, f"row has {len(cells)} fields, expected 8"))
            continue
        if len(cells) > 8:  # a stray comma in the utterance: the release has a few such rows
            cells = [*cells[:5], ",".join(cells[5:len(cells) - 2]), *cells[-2:]]
        if group and group[-1][1][0] != cells[0]:
            yield from flush()
            group = []
        group.append((n, cells))
    yield from flush()
    if header is None:
        raise InputError.at(p, None, None, "file has no rows")


# --- KokoroChat ---------------------------------------------------------------------------

def _kokoro_record(path: Path, obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get("dialogue"), list):
        raise ValueError("expected an object with a 'dialogue' list")
    turns: list[dict[str, str]] = []
    for i, u in enumerate(obj["dialogue"]):
        if not isinstance(u, dict):
            raise ValueError(f"dialogue[{i}] is not an object")
        role = {"client": "speaker", "counselor": "listener"}.get(str(u.get("role")))
        if role is None:
            raise ValueError(f"dialogue[{i}].role: unknown role {u.get('role')!r} (client or counselor)")
        text = str(u.get("utterance") or "").strip()
        if not text:
            continue
        # consecutive messages by one person are one turn
        if turns and turns[-1]["role"] == role:
            turns[-1]["text"] += "\n" + text
        else:
            turns.append({"role": role, "text": text})
    meta = {k: v for k, v in obj.items() if k != "dialogue"}
    meta["source"] = "kokorochat"
    topic = meta.get("topic")
    return {
        "id": f"kokorochat-{path.stem}",
        "situation_id": f"kokorochat-{path.stem}",
        "emotion": None,
        "lang": "ja",
        "situation": str(topic) if isinstance(topic, str) else "",
        "turns": turns,
        "meta": meta,
    }


def read_kokorochat(path: str | Path) -> Iterator[RawRecord]:
    """KokoroChat JSON (one dialogue per file: {"dialogue": [{role, time, utterance}], reviews…}),
    a single file or a folder of them. client → speaker, counselor → listener; consecutive
    messages by the same person are merged. KokoroChat has no emotion labels: ``emotion`` is null."""
    root = Path(path)
    files = sorted(root.glob("*.json"), key=lambda f: (len(f.stem), f.stem)) if root.is_dir() else [root]
    for f in files:
        p = str(f)
        with open(f, "rb") as fh:
            _check_head(p, fh)
            raw = fh.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            yield RawRecord(p, 1, None, _encoding_problem(p, raw, 1))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            yield RawRecord(p, e.lineno, None, Problem(p, e.lineno, None, f"malformed JSON: {e.msg} (column {e.colno})"))
            continue
        try:
            yield RawRecord(p, 1, _kokoro_record(f, obj))
        except ValueError as e:
            yield RawRecord(p, 1, None, Problem(p, 1, None, str(e)))


READERS = {
    "jsonl": read_jsonl,
    "json": read_json_array,
    "csv": read_csv,
    "parquet": read_parquet,
    "ed": read_ed,
    "kokorochat": read_kokorochat,
    "hf": read_hf,
}

#: the taxonomy a format's labels belong to when the user names none
DEFAULT_TAXONOMY = {"ed": "ed32"}


def read_raw(path: str | Path, fmt: str | None = None) -> Iterator[RawRecord]:
    p = local_path(path)
    if not p.exists():
        raise InputError.at(str(p), None, None, "no such file or folder")
    fmt = fmt or detect_format(p)
    if fmt not in READERS:
        from kyokan.errors import did_you_mean

        raise InputError.at(str(p), None, None, f"unknown format {fmt!r}{did_you_mean(fmt, FORMATS)}; one of {', '.join(FORMATS)}")
    _check_layout(p, fmt)
    return READERS[fmt](p)


_HEADER_FIELD = re.compile(r'^"?[A-Za-z_][A-Za-z0-9_ ]*"?$')


def _first_line(p: Path) -> tuple[int, str] | None:
    """The first non-blank line of a text file (number, text), from its first 64 KB."""
    try:
        with open(p, "rb") as f:
            head = f.read(65536)
    except OSError:
        return None
    for n, raw in enumerate(head.lstrip(b"\xef\xbb\xbf").split(b"\n"), 1):
        text = raw.decode("utf-8", "replace").strip()
        if text:
            return n, text
    return None


def _check_layout(p: Path, fmt: str) -> None:
    """A file whose content is another layout than its name (or --format) says: one line naming the
    layout it looks like and the --format to give, instead of one problem per record."""
    if fmt not in ("jsonl", "csv", "ed") or not p.is_file():
        return
    first = _first_line(p)
    if first is None:
        return
    n, line = first
    looks: tuple[str, str] | None = None
    if fmt in ("csv", "ed") and line.startswith("{"):
        looks = ("JSONL (a JSON object per line)", "jsonl")
    elif fmt in ("csv", "ed") and line.startswith("["):
        looks = ("a JSON array", "json")
    elif fmt == "jsonl" and not line.startswith(("{", "[")):
        if line.lower().startswith("conv_id,utterance_idx"):
            looks = ("an EmpatheticDialogues CSV (conv_id,utterance_idx,... header)", "ed")
        elif line.count(",") >= 1 and all(_HEADER_FIELD.match(c.strip()) for c in line.split(",")):
            looks = ("CSV (a header line)", "csv")
    if looks is not None:
        what, flag = looks
        expected = {"jsonl": "JSONL", "csv": "kyokan CSV", "ed": "an EmpatheticDialogues CSV"}[fmt]
        raise InputError.at(str(p), n, None, f"looks like {what}, not {expected}; give --format {flag}")


