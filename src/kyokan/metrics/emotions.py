"""``kyokan eval emotions``: ask a model which taxonomy label fits each situation + dialogue
(EmplifAI §4's reverse-engineering evaluation), then score the answers with kyokan.metrics.labels.

The prompt lists the taxonomy's label names in the data's language and asks for one of them as
JSON ``{"emotion": "<label>"}`` (a JSON schema with an ``enum`` of the names is sent as structured
output; backends that ignore it are parsed tolerantly). An answer off the list is kept in ``raw``,
normalised to the nearest label with ``Taxonomy.suggest`` and flagged ``off_list``. Calls that fail
for good are written to ``errors.jsonl`` and retried on the next run (predictions append as they
finish and a rerun skips the ids already done).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.io import JsonlAppender, read_jsonl_done, write_json
from kyokan.taxonomy import Taxonomy, get_taxonomy

PROMPT_VERSION = 1

_PROMPTS = {
    "ja": {
        "system": "あなたは感情分析の専門家です。",
        "user": ("次の状況と対話を読み、話し手（相談する人）が感じている感情として最も適切なものを、"
                 "次の感情リストから1つだけ選んでください。\n感情リスト: {labels}\n\n状況: {situation}\n\n対話:\n{dialogue}\n\n"
                 "リストの語をそのまま使い、JSON形式 {{\"emotion\": \"<感情>\"}} だけで答えてください。"),
        "speaker": "話し手", "listener": "聞き手", "sep": "、",
    },
    "en": {
        "system": "You are an expert in emotion analysis.",
        "user": ("Read the situation and the dialogue, and choose the ONE emotion from the list that best describes "
                 "what the speaker (the person sharing) feels.\nEmotions: {labels}\n\nSituation: {situation}\n\n"
                 "Dialogue:\n{dialogue}\n\nUse a word from the list exactly and answer only with JSON "
                 "{{\"emotion\": \"<emotion>\"}}."),
        "speaker": "Speaker", "listener": "Listener", "sep": ", ",
    },
}


def build_messages(d: Any, tax: Taxonomy, lang: str) -> list[dict[str, str]]:
    p = _PROMPTS["ja" if lang.startswith("ja") else "en"]
    names = tax.names("ja" if lang.startswith("ja") else "en")
    dialogue = "\n".join(f"{p[t.role]}: {t.text}" for t in d.turns)
    return [{"role": "system", "content": p["system"]},
            {"role": "user", "content": p["user"].format(labels=p["sep"].join(names), situation=d.situation,
                                                          dialogue=dialogue)}]


def answer_schema(tax: Taxonomy, lang: str) -> dict[str, Any]:
    names = tax.names("ja" if lang.startswith("ja") else "en")
    return {"type": "object", "properties": {"emotion": {"type": "string", "enum": names}},
            "required": ["emotion"], "additionalProperties": False}


_JSON_OBJ = re.compile(r"\{.*?\}", re.S)


def parse_answer(text: str) -> str:
    """The label text of an answer: the ``emotion`` field of the first JSON object, else the
    stripped first line."""
    for m in _JSON_OBJ.finditer(text or ""):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("emotion"), str):
            return obj["emotion"].strip()
    s = (text or "").strip()
    return s.splitlines()[0].strip() if s else ""


def predict_emotions(data: str | Path, model_spec: str, out_dir: str | Path, *, taxonomy: str | None = None,
                     base_url: str | None = None, api_key: str | None = None, adapter: str | None = None,
                     concurrency: int = 8, max_new_tokens: int = 32, seed: int = 0, limit: int | None = None,
                     progress: Callable[[int, int], None] | None = None, model: Any = None) -> dict[str, Any]:
    """Write ``predictions.jsonl`` (id, gold, predicted, raw, off_list) in ``out_dir``; resumable."""
    from kyokan.data import load_dialogues
    from kyokan.metrics.labels import normalize_prediction
    from kyokan.models import GenerationParams, load_model

    tax = get_taxonomy(taxonomy) if taxonomy else get_taxonomy()
    dialogues = load_dialogues(data, taxonomy=tax.name)
    if limit is not None:
        dialogues = dialogues[:limit]
    if not dialogues:
        raise KyokanError(f"{data}: no dialogues")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred_path = out / "predictions.jsonl"
    done = read_jsonl_done(pred_path, "id")
    todo = [d for d in dialogues if d.id not in done]
    if model is None:
        model = load_model(model_spec, base_url=base_url, api_key=api_key, adapter=adapter, concurrency=concurrency)
    failures = 0
    errors_path = out / "errors.jsonl"
    errors_path.unlink(missing_ok=True)
    written = len(done)
    chunk = max(1, concurrency * 4)
    with JsonlAppender(pred_path) as app:
        for s in range(0, len(todo), chunk):
            part = todo[s:s + chunk]
            msgs = [build_messages(d, tax, d.lang) for d in part]
            params = [GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed,
                                       json_schema=answer_schema(tax, d.lang), json_schema_name="emotion")
                      for d in part]
            results = _run(model, msgs, params, concurrency)
            for d, res in zip(part, results, strict=True):
                if isinstance(res, BaseException):
                    failures += 1
                    with open(errors_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"id": d.id, "error": f"{type(res).__name__}: {res}"}, ensure_ascii=False) + "\n")
                    continue
                raw = parse_answer(res.text)
                pred, off = normalize_prediction(tax, raw)
                app.write({"kind": "kyokan.eval.prediction", "version": 1, "id": d.id, "gold": d.emotion, "predicted": pred, "raw": res.text, "answer": raw,
                           "off_list": off, "lang": d.lang})
                written += 1
            if progress:
                progress(written, len(dialogues))
    info = {"model": model.info(), "prompt_version": PROMPT_VERSION, "taxonomy": tax.name, "data": str(data),
            "dialogues": len(dialogues), "predicted": written, "failed": failures, "seed": seed,
            "generation": GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed).to_dict()}
    write_json(out / "prediction_run.json", info)
    return info


def _run(model: Any, msgs: list[list[dict[str, str]]], params: list[Any], concurrency: int) -> list[Any]:
    async def go() -> list[Any]:
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(m: list[dict[str, str]], p: Any) -> Any:
            async with sem:
                try:
                    return await model.agenerate(m, p)
                except Exception as e:  # recorded per row
                    return e

        return list(await asyncio.gather(*(one(m, p) for m, p in zip(msgs, params, strict=True))))

    return asyncio.run(go())
