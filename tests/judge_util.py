"""Helpers for the judge tests: dialogue records and a deterministic 'judge' responder for the real
loopback OpenAI-compatible server (kyokan.testing.openai_server)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from kyokan.judge.rubric import EMPLIFAI_METRICS
from kyokan.testing.openai_server import Fault

_ID_RE = re.compile(r"\(id: ([a-z_]+)\)")


def record(i: int, *, source: str = "model-a", format_ok: bool | None = True, lang: str = "ja",
           turns: list[dict[str, str]] | None = None, reply: str | None = None) -> dict[str, Any]:
    reply = reply or f"それはつらいですね。{i}回目のお話、聞かせてください。"
    meta: dict[str, Any] = {"source": "kyokan-test"}
    if format_ok is not None:
        meta["generation"] = {"model": source, "format_ok": format_ok}
    return {
        "id": f"d{i:03d}", "situation_id": f"s{i:03d}", "emotion": "fear", "lang": lang,
        "situation": "来週、初めての透析を受けることになりました。",
        "turns": turns if turns is not None else [
            {"role": "speaker", "text": "明日から透析が始まるんです。怖くて眠れません。"},
            {"role": "listener", "text": reply},
            {"role": "speaker", "text": "痛いのかなとか、ずっと考えてしまって。"},
            {"role": "listener", "text": "不安になるのは当然です。一緒に確認していきましょう。"},
        ],
        "meta": meta,
    }


def write_records(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return path


def user_text(req: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in req.get("messages", []) if m.get("role") == "user")


def fake_score(req: dict[str, Any], metric: str) -> int:
    """A deterministic score from the first user message (the dialogue) and the metric."""
    first = next(m["content"] for m in req["messages"] if m["role"] == "user")
    h = hashlib.sha256((first + metric).encode()).digest()
    return 1 + h[0] % 5


def metric_of(req: dict[str, Any]) -> str | None:
    """The metric a per-metric prompt asks about (the metric's name appears in the prompt)."""
    from kyokan.judge.rubric import get_rubric

    first = next(m["content"] for m in req["messages"] if m["role"] == "user")
    r = get_rubric()
    for m in r.metrics:
        for lang in ("ja", "en"):
            for language in ("日本語", "Japanese", "英語", "English"):
                if m.text("definition", lang, language) in first:
                    return m.id
    return None


def judge_responder(style: str = "json"):  # type: ignore[no-untyped-def]
    """A responder answering like a judge: ``json`` (structured), ``brackets`` (prose + [[n]]),
    ``fenced`` (JSON in a code fence after prose), ``garbage`` (no score at all)."""

    def respond(req: dict[str, Any]) -> str | Fault:
        if style == "garbage":
            return "I think the responder did fine overall."
        ids = _ID_RE.findall(next(m["content"] for m in req["messages"] if m["role"] == "user"))
        if ids:  # all-in-one
            scores = {m: {"rationale": f"r-{m}", "score": fake_score(req, m)} for m in ids}
            return json.dumps({"scores": scores}, ensure_ascii=False)
        metric = metric_of(req) or "?"
        s = fake_score(req, metric)
        if style == "brackets":
            return f"応答者は丁寧です。評価は [[{s}]]"
        if style == "fenced":
            return f"Reasoning first.\n```json\n{json.dumps({'rationale': 'ok', 'score': s})}\n```"
        return json.dumps({"rationale": f"r-{metric}", "score": s}, ensure_ascii=False)

    return respond


__all__ = ["EMPLIFAI_METRICS", "fake_score", "judge_responder", "metric_of", "record", "user_text", "write_records"]
