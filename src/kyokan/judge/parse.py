"""A tolerant reader for judge answers: structured JSON, JSON inside prose or code fences, ``[[n]]``
and ``score: n`` lines, full-width digits. It never guesses: an answer without an explicit,
in-range score is *unparseable* (the caller re-asks, then marks the metric unscored), never a 1.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_BRACKET = re.compile(r"\[\[\s*(-?\d+(?:\.\d+)?)\s*\]\]")
_LABELLED = re.compile(r"(?:score|rating|スコア|評価|点数|得点)\s*[:=：]\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_INT_STR = re.compile(r"^\s*(-?\d+(?:\.0+)?)\s*(?:/\s*\d+)?\s*(?:点)?\s*$")
_WINNER_BRACKET = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    """One metric's reading of an answer: a score, or an error saying why there is none."""

    score: int | None
    rationale: str | None = None
    error: str | None = None
    #: which rule read it: json, json-in-text, brackets, label
    via: str | None = None

    @property
    def ok(self) -> bool:
        return self.score is not None


@dataclass(frozen=True)
class ParsedWinner:
    winner: str | None  # "A" | "B" | "tie"
    rationale: str | None = None
    error: str | None = None
    via: str | None = None

    @property
    def ok(self) -> bool:
        return self.winner is not None


def json_objects(text: str) -> list[tuple[dict[str, Any], bool]]:
    """Every JSON object in ``text`` (the whole text first, then embedded ones in order), each with
    whether it was the whole answer."""
    s = text.strip()
    if s.startswith("```"):
        s = re.sub(r"^```[a-zA-Z]*\s*", "", s)
        s = re.sub(r"\s*```\s*$", "", s)
    try:
        whole = json.loads(s)
        if isinstance(whole, dict):
            return [(whole, True)]
    except (json.JSONDecodeError, ValueError):
        pass
    found: list[tuple[dict[str, Any], bool]] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except (json.JSONDecodeError, ValueError):
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append((obj, False))
        i = text.find("{", end)
    return found


def coerce_score(v: Any, lo: int, hi: int) -> tuple[int | None, str | None]:
    """An int in [lo, hi] from an int, an integral float or a digit string ("４", "4/5", "4点")."""
    if isinstance(v, bool) or v is None:
        return None, f"score is {json.dumps(v)}"
    x: float
    if isinstance(v, int | float):
        x = float(v)
    elif isinstance(v, str):
        m = _INT_STR.match(unicodedata.normalize("NFKC", v))
        if not m:
            return None, f"score {v!r} is not a number"
        x = float(m.group(1))
    else:
        return None, f"score has type {type(v).__name__}"
    if x != int(x):
        return None, f"score {v!r} is not an integer"
    n = int(x)
    if not lo <= n <= hi:
        return None, f"score {n} is outside {lo}-{hi}"
    return n, None


def _from_obj(obj: dict[str, Any], lo: int, hi: int, via: str) -> Parsed | None:
    for key in ("score", "rating", "評価", "スコア", "点数"):
        if key in obj:
            n, err = coerce_score(obj[key], lo, hi)
            rat = obj.get("rationale", obj.get("reason", obj.get("explanation")))
            rat_s = rat if isinstance(rat, str) else None
            return Parsed(n, rat_s, err, via if n is not None else None)
    return None


def parse_score(text: str | None, lo: int = 1, hi: int = 5) -> Parsed:
    """The score of a one-metric answer."""
    if text is None or not text.strip():
        return Parsed(None, error="empty answer")
    objs = json_objects(text)
    # the last object that names a score wins (models reason first, then answer)
    for obj, whole in reversed(objs):
        p = _from_obj(obj, lo, hi, "json" if whole else "json-in-text")
        if p is not None:
            if p.ok:
                return p
            return Parsed(None, p.rationale, p.error)
    norm = unicodedata.normalize("NFKC", text)
    for rx, via in ((_BRACKET, "brackets"), (_LABELLED, "label")):
        hits = rx.findall(norm)
        if hits:
            n, err = coerce_score(hits[-1], lo, hi)
            if n is not None:
                return Parsed(n, _prose(text), None, via)
            return Parsed(None, error=err)
    return Parsed(None, error="no score found (no JSON score, [[n]] or 'score: n')")


def _prose(text: str) -> str | None:
    s = _BRACKET.sub("", text).strip()
    return s[:2000] or None


def parse_scores(text: str | None, metric_ids: list[str], lo: int = 1, hi: int = 5) -> dict[str, Parsed]:
    """The scores of an all-in-one answer, metric by metric (a missing metric is unparseable)."""
    out: dict[str, Parsed] = {m: Parsed(None, error="metric missing from the answer") for m in metric_ids}
    if text is None or not text.strip():
        return {m: Parsed(None, error="empty answer") for m in metric_ids}
    for obj, whole in json_objects(text):
        via = "json" if whole else "json-in-text"
        sc = obj.get("scores")
        inner: dict[str, Any] = sc if isinstance(sc, dict) else obj
        for m in metric_ids:
            if out[m].ok or m not in inner:
                continue
            v = inner[m]
            if isinstance(v, dict):
                p = _from_obj(v, lo, hi, via) or Parsed(None, error=f"{m}: no score field")
            else:
                n, err = coerce_score(v, lo, hi)
                p = Parsed(n, None, err, via if n is not None else None)
            out[m] = p
    norm = unicodedata.normalize("NFKC", text)
    for m in metric_ids:
        if out[m].ok:
            continue
        rx = re.compile(re.escape(m) + r"[\"'*`\s]*[:：=]?\s*(?:\[\[\s*(-?\d+(?:\.\d+)?)\s*\]\]|(-?\d+(?:\.\d+)?))")
        hits = rx.findall(norm)
        if hits:
            g = hits[-1]
            n, err = coerce_score(g[0] or g[1], lo, hi)
            out[m] = Parsed(n, None, err, ("brackets" if g[0] else "label") if n is not None else None)
    return out


def _coerce_winner(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    s = unicodedata.normalize("NFKC", v).strip().strip("[]\"' ").lower()
    return {"a": "A", "b": "B", "tie": "tie", "c": "tie", "draw": "tie", "引き分け": "tie"}.get(s)


def parse_winner(text: str | None) -> ParsedWinner:
    if text is None or not text.strip():
        return ParsedWinner(None, error="empty answer")
    for obj, whole in reversed(json_objects(text)):
        if "winner" in obj:
            w = _coerce_winner(obj["winner"])
            rat = obj.get("rationale")
            if w is None:
                return ParsedWinner(None, rat if isinstance(rat, str) else None,
                                    f"winner {obj['winner']!r} is not A, B or tie")
            return ParsedWinner(w, rat if isinstance(rat, str) else None, None,
                                "json" if whole else "json-in-text")
    hits = _WINNER_BRACKET.findall(unicodedata.normalize("NFKC", text))
    if hits:
        return ParsedWinner(_coerce_winner(hits[-1]), _prose(text), None, "brackets")
    return ParsedWinner(None, error="no winner found (no JSON winner or [[A]]/[[B]]/[[C]])")


def parse_winners(text: str | None, metric_ids: list[str]) -> dict[str, ParsedWinner]:
    out = {m: ParsedWinner(None, error="metric missing from the answer") for m in metric_ids}
    if text is None or not text.strip():
        return {m: ParsedWinner(None, error="empty answer") for m in metric_ids}
    for obj, whole in json_objects(text):
        wn = obj.get("winners")
        inner: dict[str, Any] = wn if isinstance(wn, dict) else obj
        for m in metric_ids:
            if out[m].ok or m not in inner:
                continue
            v = inner[m]
            raw = v.get("winner") if isinstance(v, dict) else v
            w = _coerce_winner(raw)
            rat = v.get("rationale") if isinstance(v, dict) else None
            out[m] = ParsedWinner(w, rat if isinstance(rat, str) else None,
                                  None if w else f"winner {raw!r} is not A, B or tie",
                                  ("json" if whole else "json-in-text") if w else None)
    return out
