"""Validation of dialogue records: every problem as ``PATH:LINE: field: message``.

The checks are hand-written over plain dicts (not a generic schema library) because they must
name the exact field (``turns[2].role``), suggest the nearest label, and run at well over
50k dialogues/s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kyokan.data.readers import DEFAULT_TAXONOMY, RawRecord, detect_format, read_raw
from kyokan.data.record import FIELDS, REQUIRED, ROLES
from kyokan.errors import Problem
from kyokan.taxonomy import Taxonomy, get_taxonomy
from kyokan.text import is_blank

_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")  # fullmatch: "ja\n" is not a code
_JA_TEXT_FIELDS = ("situation",)
_INVISIBLE_ONLY = "is empty after normalisation (only invisible characters: zero-width, bidi controls, fillers)"


def _suggest_field(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, FIELDS, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number",
            bool: "boolean", type(None): "null"}.get(type(v), type(v).__name__)


_FIELDSET = frozenset(FIELDS)
_REQUIRED = frozenset(REQUIRED)
_TURN_KEYS = frozenset(("role", "text"))


def _fast_valid(obj: Any, taxonomy: Taxonomy) -> str | None:
    """The common case, checked with as few Python operations as possible: returns the canonical
    label when the record is certainly valid (labelled), else None (then the full check runs and
    explains what is wrong)."""
    if type(obj) is not dict:
        return None
    keys = obj.keys()
    if not (keys <= _FIELDSET and keys >= _REQUIRED):
        return None
    for k in ("id", "situation_id", "lang", "situation"):
        v = obj[k]
        if type(v) is not str or is_blank(v):
            return None
    if not _LANG.fullmatch(obj["lang"]):
        return None
    meta = obj.get("meta")
    if meta is not None and type(meta) is not dict:
        return None
    turns = obj["turns"]
    if type(turns) is not list or not turns:
        return None
    prev = None
    for t in turns:
        if type(t) is not dict or t.keys() != _TURN_KEYS:
            return None
        role, text = t["role"], t["text"]
        if role == prev or role not in ROLES or type(text) is not str or is_blank(text):
            return None
        prev = role
    emotion = obj["emotion"]
    if type(emotion) is not str:
        return None
    return taxonomy.normalize(emotion)


def _normalized(obj: dict[str, Any], canon: str | None) -> dict[str, Any]:
    rec = {
        "id": obj["id"], "situation_id": obj["situation_id"], "emotion": canon, "lang": obj["lang"],
        "situation": obj["situation"], "turns": obj["turns"], "meta": obj.get("meta") or {},
    }
    if rec["lang"].startswith("ja"):
        # Japanese text from different input methods mixes full- and half-width forms
        nfkc = unicodedata.normalize
        rec["situation"] = nfkc("NFKC", rec["situation"])
        rec["turns"] = [{"role": t["role"], "text": nfkc("NFKC", t["text"])} for t in rec["turns"]]
    return rec


def check_record(obj: Any, taxonomy: Taxonomy, path: str, line: int, *,
                 allow_unlabelled: bool = False, normalize: bool = True) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Check one raw record. Returns the record (with ``normalize``: canonical label id, NFKC for
    Japanese text fields; without: the input object) and the problems; the record is None when
    there is any problem."""
    canon: str | None = _fast_valid(obj, taxonomy)
    if canon is not None:
        return (_normalized(obj, canon) if normalize else obj), []
    probs: list[Problem] = []

    def bad(fld: str | None, msg: str) -> None:
        probs.append(Problem(path, line, fld, msg))

    if not isinstance(obj, dict):
        bad(None, f"expected a JSON object, got {_type_name(obj)}")
        return None, probs
    for k in obj:
        if k not in FIELDS:
            bad(k, f"unknown field{_suggest_field(k)}")
    for k in REQUIRED:
        if k not in obj:
            bad(k, "missing")

    for k in ("id", "situation_id", "lang", "situation"):
        if k not in obj:
            continue
        v = obj[k]
        if not isinstance(v, str):
            bad(k, f"must be a string, got {_type_name(v)}")
        elif is_blank(v):
            if k == "situation" and allow_unlabelled:
                continue
            bad(k, "is empty" if not v.strip() else _INVISIBLE_ONLY)
    lang = obj.get("lang")
    if isinstance(lang, str) and lang.strip() and not _LANG.fullmatch(lang):
        bad("lang", f"{lang!r} is not a language code (e.g. ja, en)")

    emotion = obj.get("emotion", "")
    canon = None
    if "emotion" in obj:
        if emotion is None:
            if not allow_unlabelled:
                bad("emotion", "is null (unlabelled); pass --allow-unlabelled to accept unlabelled dialogues")
        elif not isinstance(emotion, str):
            bad("emotion", f"must be a string, got {_type_name(emotion)}")
        elif not emotion.strip():
            bad("emotion", "is empty")
        else:
            canon = taxonomy.normalize(emotion)
            if canon is None:
                near = taxonomy.suggest(emotion)
                hint = f"; did you mean {near!r}?" if near else ""
                bad("emotion", f"unknown label {emotion!r} in taxonomy {taxonomy.name}{hint}")

    turns = obj.get("turns")
    if "turns" in obj:
        if not isinstance(turns, list):
            bad("turns", f"must be an array, got {_type_name(turns)}")
        elif not turns:
            bad("turns", "is empty")
        else:
            prev = None
            for i, t in enumerate(turns):
                f = f"turns[{i}]"
                if not isinstance(t, dict):
                    bad(f, f"must be an object with role and text, got {_type_name(t)}")
                    continue
                for k in t:
                    if k not in ("role", "text"):
                        bad(f"{f}.{k}", "unknown field (turns have role and text)")
                role, text = t.get("role"), t.get("text")
                if "role" not in t:
                    bad(f"{f}.role", "missing")
                elif role not in ROLES:
                    bad(f"{f}.role", f"unknown role {role!r} (speaker or listener)")
                elif role == prev:
                    bad(f"{f}.role", f"two {role} turns in a row (turns alternate speaker/listener)")
                if "text" not in t:
                    bad(f"{f}.text", "missing")
                elif not isinstance(text, str):
                    bad(f"{f}.text", f"must be a string, got {_type_name(text)}")
                elif is_blank(text):
                    bad(f"{f}.text", "is empty" if not text.strip() else _INVISIBLE_ONLY)
                prev = role

    meta = obj.get("meta")
    if meta is not None and not isinstance(meta, dict):
        bad("meta", f"must be an object, got {_type_name(meta)}")

    if probs:
        return None, probs
    return (_normalized(obj, canon) if normalize else obj), []


@dataclass
class ValidationResult:
    valid: int = 0
    invalid: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.invalid == 0 and self.problem_count == 0


@dataclass
class Checked:
    """One record after validation: ``record`` when valid, else ``problems``."""

    path: str
    line: int
    record: dict[str, Any] | None
    problems: list[Problem]
    raw: Any = None


def check_stream(raws: Iterable[RawRecord], taxonomy: Taxonomy, *, allow_unlabelled: bool = False,
                 normalize: bool = True) -> Iterator[Checked]:
    """Validate a stream, including id uniqueness across the whole stream."""
    # id -> first line; the path is stored only for multi-file inputs (a datasets folder's
    # splits, a folder of KokoroChat files), which keeps 1M ids in ~100 MB
    first_line: dict[str, int | tuple[str, int]] = {}
    main_path: str | None = None
    for r in raws:
        if r.error is not None:
            yield Checked(r.path, r.line, None, [r.error], r.data)
            continue
        rec, probs = check_record(r.data, taxonomy, r.path, r.line, allow_unlabelled=allow_unlabelled,
                                  normalize=normalize)
        if rec is not None:
            if main_path is None:
                main_path = r.path
            rid = rec["id"]
            prev = first_line.get(rid)
            if prev is not None:
                ppath, pline = (main_path, prev) if isinstance(prev, int) else prev
                where = f"line {pline}" if ppath == r.path else f"{ppath}:{pline}"
                probs = [Problem(r.path, r.line, "id", f"duplicate id {rid!r} (first at {where})")]
                rec = None
            else:
                first_line[rid] = r.line if r.path == main_path else (r.path, r.line)
        yield Checked(r.path, r.line, rec, probs, r.data)


def taxonomy_for(path: str, fmt: str | None, taxonomy: str | None) -> Taxonomy:
    if taxonomy:
        return get_taxonomy(taxonomy)
    fmt = fmt or detect_format(path)
    return get_taxonomy(DEFAULT_TAXONOMY.get(fmt, "goemotions28"))


def iter_checked(path: str, *, fmt: str | None = None, taxonomy: str | None = None,
                 allow_unlabelled: bool | None = None, normalize: bool = True) -> Iterator[Checked]:
    fmt = fmt or detect_format(path)
    tax = taxonomy_for(path, fmt, taxonomy)
    if allow_unlabelled is None:
        allow_unlabelled = fmt == "kokorochat"
    return check_stream(read_raw(path, fmt), tax, allow_unlabelled=allow_unlabelled, normalize=normalize)


def validate_path(path: str, *, fmt: str | None = None, taxonomy: str | None = None,
                  allow_unlabelled: bool | None = None, max_problems: int = 50) -> ValidationResult:
    res = ValidationResult()
    for c in iter_checked(path, fmt=fmt, taxonomy=taxonomy, allow_unlabelled=allow_unlabelled, normalize=False):
        if c.record is not None:
            res.valid += 1
        else:
            res.invalid += 1
            res.problem_count += len(c.problems)
            room = max_problems - len(res.problems)
            if room > 0:
                res.problems.extend(c.problems[:room])
    return res
