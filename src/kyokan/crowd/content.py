"""Checking what a worker or reviewer typed: one function per task kind, same rules for both."""

from __future__ import annotations

import unicodedata
from typing import Any

from kyokan.crowd.config import CrowdConfig
from kyokan.crowd.errors import CrowdError


def _text(value: Any, field: str, cfg: CrowdConfig, lang: str) -> str:
    if not isinstance(value, str):
        raise CrowdError(f"{field}: missing", code="missing")
    text = value.replace("\r\n", "\n").strip()
    if lang.startswith("ja"):
        text = unicodedata.normalize("NFKC", text)
    if len(text) < cfg.min_chars:
        raise CrowdError(f"{field}: too short (at least {cfg.min_chars} characters)", code="too_short")
    if len(text) > cfg.max_chars:
        raise CrowdError(f"{field}: too long ({len(text)} characters, at most {cfg.max_chars})", code="too_long")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise CrowdError(f"{field}: contains control characters", code="bad_chars")
    return text


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
            try:
                x = float(v)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise CrowdError(f"ratings.{code}.{m['id']}: choose a value from {m['min']} to {m['max']}",
                                 code="missing") from None
            if x != x or not float(m["min"]) <= x <= float(m["max"]):
                raise CrowdError(f"ratings.{code}.{m['id']}: {v} is outside {m['min']}–{m['max']}", code="range")
            if m["kind"] in ("likert", "binary") and x != int(x):
                raise CrowdError(f"ratings.{code}.{m['id']}: {v} is not a whole number", code="range")
            got[code][m["id"]] = int(x) if x == int(x) else x
    extra = set(ratings) - expected
    if extra:
        raise CrowdError(f"ratings: unknown field(s) {sorted(extra)[:5]}", code="range")
    comment = raw.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > cfg.max_chars:
        raise CrowdError(f"comment: at most {cfg.max_chars} characters", code="too_long")
    return {"ratings": got, "comment": comment.strip()}
