"""Checking what a worker or reviewer typed: one function per task kind, same rules for both."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from kyokan.crowd.config import CrowdConfig
from kyokan.crowd.errors import CrowdError
from kyokan.text import bidi_controls, clean_text


def clean_field(value: Any, field: str, *, min_chars: int, max_chars: int) -> str:
    """One free-text field as it is screened and stored: direction controls (U+202E …) refused,
    then NFKC with zero-width/invisible characters removed (``kyokan.text.clean_text``), line
    ends unified, stripped; control characters (NUL, ESC …) refused; length checked after."""
    if not isinstance(value, str):
        raise CrowdError(f"{field}: missing", code="missing")
    if len(value) > 4 * max_chars + 100:  # before normalising a huge value
        raise CrowdError(f"{field}: too long (at most {max_chars} characters)", code="too_long")
    bidi = bidi_controls(value)
    if bidi:
        raise CrowdError(f"{field}: contains text-direction control characters ({', '.join(bidi[:3])}); "
                         "remove them", code="bad_chars")
    text = clean_text(value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise CrowdError(f"{field}: contains control characters", code="bad_chars")
    if len(text) < min_chars:
        raise CrowdError(f"{field}: too short (at least {min_chars} visible characters)", code="too_short")
    if len(text) > max_chars:
        raise CrowdError(f"{field}: too long ({len(text)} characters, at most {max_chars})", code="too_long")
    return text


def _text(value: Any, field: str, cfg: CrowdConfig, lang: str) -> str:
    return clean_field(value, field, min_chars=max(1, cfg.min_chars), max_chars=cfg.max_chars)


def turn_roles(exchanges: int) -> list[str]:
    return ["speaker", "listener"] * exchanges


def check_content(kind: str, raw: dict[str, Any], cfg: CrowdConfig, *, lang: str = "ja",
                  payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The normalised content to store, or ``CrowdError`` naming the bad field."""
    if kind == "situation":
        return {"text": _text(raw.get("text"), "text", cfg, lang)}
    if kind == "dialogue":
        turns = raw.get("turns")
        roles = turn_roles(cfg.exchanges)
        if not isinstance(turns, list) or len(turns) != len(roles):
            raise CrowdError(f"turns: expected {len(roles)} turns ({cfg.exchanges} exchanges)", code="turns")
        out = []
        for i, (t, role) in enumerate(zip(turns, roles, strict=True)):
            if not isinstance(t, dict) or t.get("role", role) != role:
                raise CrowdError(f"turns[{i}].role: expected {role}", code="turns")
            out.append({"role": role, "text": _text(t.get("text"), f"turns[{i}]", cfg, lang)})
        return {"turns": out}
    if kind == "rating":
        return _check_ratings(raw, cfg, payload or {})
    raise CrowdError(f"unknown task kind {kind!r}", code="kind")


def texts_of(kind: str, content: dict[str, Any]) -> list[str]:
    """The free texts of a content (what the pre-screen reads)."""
    if kind == "situation":
        return [content.get("text", "")]
    if kind == "dialogue":
        return [t.get("text", "") for t in content.get("turns", [])]
    return [content.get("comment", "")] if content.get("comment") else []


def metrics_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The packet's metrics as dicts ``{id, ja, en, question_ja, question_en, kind, min, max}``;
    bare ids and missing bounds take the packet's ``scale`` (default Likert 1–5)."""
    sc = payload.get("scale") or {}
    lo, hi = sc.get("min", 1), sc.get("max", 5)
    out = []
    for m in payload.get("metrics", []):
        d = m if isinstance(m, dict) else {"id": str(m)}
        mid = str(d.get("id") or d.get("name"))
        kind = str(d.get("kind", "likert"))
        out.append({"id": mid, "ja": str(d.get("ja") or mid), "en": str(d.get("en") or mid),
                    "question_ja": str(d.get("question_ja") or d.get("statement_ja") or ""),
                    "question_en": str(d.get("question_en") or d.get("statement_en") or ""),
                    "kind": kind, "min": d.get("min", d.get("low", 0 if kind == "binary" else lo)),
                    "max": d.get("max", d.get("high", 1 if kind == "binary" else hi))})
    return out


def rated_items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The things to rate in one packet: ``[{"code", "item"}]`` (one for a single-item packet)."""
    return list(payload.get("items") or [])


_NUMBER = re.compile(r"-?[0-9]{1,9}(?:\.[0-9]{1,6})?")


def _number(v: Any) -> float | None:
    """A rating as a number: ASCII digits only (``float()`` would also take ``٣``, ``1_0``, ``inf``)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v) if v == v and abs(v) < 1e9 else None
    if isinstance(v, str) and _NUMBER.fullmatch(v.strip()):
        return float(v.strip())
    return None


def _check_ratings(raw: dict[str, Any], cfg: CrowdConfig, payload: dict[str, Any]) -> dict[str, Any]:
    ratings = raw.get("ratings")
    if not isinstance(ratings, dict):
        raise CrowdError("ratings: missing", code="missing")
    metrics = metrics_of(payload)
    got: dict[str, dict[str, float | int]] = {}
    expected = set()
    for pos, it in enumerate(rated_items(payload)):
        code = str(it["code"])
        got[code] = {}
        for m in metrics:
            key = f"{pos}.{m['id']}"
            expected.add(key)
            v = ratings.get(key)
            if (v is None or v == "") and m["kind"] == "binary":
                v = 0  # an unticked checkbox sends nothing
            x = _number(v)
            if x is None:
                raise CrowdError(f"ratings.{code}.{m['id']}: choose a value from {m['min']} to {m['max']}",
                                 code="missing")
            if not float(m["min"]) <= x <= float(m["max"]):
                raise CrowdError(f"ratings.{code}.{m['id']}: {x:g} is outside {m['min']}–{m['max']}", code="range")
            if m["kind"] in ("likert", "binary") and x != int(x):
                raise CrowdError(f"ratings.{code}.{m['id']}: {x:g} is not a whole number", code="range")
            got[code][m["id"]] = int(x) if x == int(x) else x
    extra = set(ratings) - expected
    if extra:
        raise CrowdError(f"ratings: {len(extra)} unknown field(s)", code="range")
    comment = raw.get("comment") or ""
    return {"ratings": got, "comment": clean_field(comment, "comment", min_chars=0, max_chars=cfg.max_chars)}
