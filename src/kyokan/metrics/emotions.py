"""``kyokan eval emotions``: ask a model which taxonomy label fits each situation + dialogue
(EmplifAI §4's reverse-engineering evaluation), then score the answers with kyokan.metrics.labels.

The prompt lists the taxonomy's label names in the data's language and asks for one of them as
JSON ``{"emotion": "<label>"}``. With structure on (the default):

- a local model (``hf:``, packaged) scores every possible answer ``{"emotion": "<label>"}`` and
  answers the most probable, so it always names a label; the labels ranked by probability are kept
  (``ranking``, the top ``top_k``);
- an HTTP model is sent a JSON schema with an ``enum`` of the names as ``response_format`` (a
  server that ignores it is parsed tolerantly, counted, and named in ``prediction_run.json``);
- ``structured=False`` (``--no-structured``): no schema, free text, parsed tolerantly.

An answer off the list is kept in ``raw``, normalised to the nearest label with
``Taxonomy.suggest`` and flagged ``off_list``. Calls that fail for good are written to
``errors.jsonl`` and retried on the next run (predictions append as they finish and a rerun skips
the ids already done); a configuration error from the server (HTTP 4xx: unknown model, bad
parameter) stops the run at once.
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


def answer_choices(tax: Taxonomy, lang: str) -> tuple[str, ...]:
    """Every well-formed answer: ``{"emotion": "<name>"}`` per label, as the schema would write it."""
    names = tax.names("ja" if lang.startswith("ja") else "en")
    return tuple(json.dumps({"emotion": n}, ensure_ascii=False) for n in names)


def rank_labels(tax: Taxonomy, lang: str, choice_logprobs: dict[str, float], top_k: int) -> list[dict[str, Any]]:
    """The ``top_k`` labels by probability (from every answer's log-probability)."""
    import math

    ranked: list[tuple[float, str]] = []
    for ans, lp in choice_logprobs.items():
        label = tax.normalize(parse_answer(ans))
        if label is not None:
            ranked.append((math.exp(lp), label))
    ranked.sort(key=lambda x: (-x[0], x[1]))
    return [{"label": label, "prob": round(p, 6)} for p, label in ranked[: max(0, top_k)]]


def predict_emotions(data: str | Path, model_spec: str, out_dir: str | Path, *, taxonomy: str | None = None,
                     base_url: str | None = None, api_key: str | None = None, adapter: str | None = None,
                     concurrency: int = 8, max_new_tokens: int = 32, seed: int = 0, limit: int | None = None,
                     progress: Callable[[int, int], None] | None = None, model: Any = None,
                     structured: bool = True, top_k: int = 5) -> dict[str, Any]:
    """Write ``predictions.jsonl`` (id, gold, predicted, raw, off_list, decoding, ranking) in
    ``out_dir``; resumable."""
    from kyokan.data import load_dialogues
    from kyokan.metrics.labels import normalize_prediction
    from kyokan.models import GenerationParams, load_model
    from kyokan.models.constrain import valid_json_answer

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
    caps = model.capabilities() if hasattr(model, "capabilities") else {}
    decodings: dict[str, int] = {}
    invalid = 0
    from kyokan.records import Prediction

    answered = [written]

    def tick() -> None:  # per answered row, not per chunk
        answered[0] += 1
        if progress:
            progress(min(answered[0], len(dialogues)), len(dialogues))

    with JsonlAppender(pred_path) as app:
        for s in range(0, len(todo), chunk):
            part = todo[s:s + chunk]
            msgs = [build_messages(d, tax, d.lang) for d in part]
            params = [GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed,
                                       json_schema=answer_schema(tax, d.lang) if structured else None,
                                       json_schema_name="emotion",
                                       choices=answer_choices(tax, d.lang) if structured and caps.get("choices") else None)
                      for d in part]
            answered[0] = written
            results = _run(model, msgs, params, concurrency, on_done=tick)
            for d, p, res in zip(part, params, results, strict=True):
                if isinstance(res, BaseException):
                    failures += 1
                    with open(errors_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"id": d.id, "error": f"{type(res).__name__}: {res}"}, ensure_ascii=False) + "\n")
                    continue
                raw = parse_answer(res.text)
                pred, off = normalize_prediction(tax, raw)
                decoding = getattr(res, "constrained", None) or ("response_format" if p.json_schema else "free")
                decodings[decoding] = decodings.get(decoding, 0) + 1
                valid = valid_json_answer(res.text, p.json_schema) if p.json_schema is not None else None
                if valid is False:
                    invalid += 1
                row: dict[str, Any] = {"kind": "kyokan.eval.prediction", "version": 1, "id": d.id, "gold": d.emotion,
                                       "predicted": pred, "raw": res.text, "answer": raw, "off_list": off,
                                       "lang": d.lang, "decoding": decoding, "schema_valid": valid}
                clp = getattr(res, "choice_logprobs", None)
                if clp:
                    row["ranking"] = rank_labels(tax, d.lang, clp, top_k)
                row["scoring"] = "probabilities" if clp else "text"
                Prediction.model_validate(row)  # the writer holds itself to the record it promises
                app.write(row)
                written += 1
            if progress:
                progress(written, len(dialogues))
    info = {"model": model.info(), "prompt_version": PROMPT_VERSION, "taxonomy": tax.name, "data": str(data),
            "dialogues": len(dialogues), "predicted": written, "failed": failures, "seed": seed,
            "generation": GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed).to_dict(),
            "structured": structured, "top_k": top_k, "decoding": decodings, "schema_invalid": invalid}
    if invalid and decodings.get("response_format"):
        info["warning"] = (f"the server was sent a JSON schema (response_format) but {invalid} answers were not "
                           "valid under it: it ignores response_format; answers were parsed tolerantly")
        note = model.capabilities().get("note") if hasattr(model, "capabilities") else None
        if note:
            info["warning"] += f" ({note})"
    write_json(out / "prediction_run.json", info)
    return info


def _run(model: Any, msgs: list[list[dict[str, str]]], params: list[Any], concurrency: int,
         on_done: Callable[[], None] | None = None) -> list[Any]:
    """The answers (or the exception of each failed call), in order; ``on_done`` after each call."""
    from kyokan.models.base import ServerConfigError

    async def go() -> list[Any]:
        probe = getattr(model, "probe", None)
        if probe is not None:  # recognise the server once, before the concurrent calls
            await probe()
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(m: list[dict[str, str]], p: Any) -> Any:
            async with sem:
                try:
                    res = await model.agenerate(m, p)
                except ServerConfigError:
                    raise  # the server refuses the request as configured: stop, do not fail every row
                except Exception as e:  # recorded per row
                    res = e
                if on_done is not None:
                    on_done()
                return res

        return list(await asyncio.gather(*(one(m, p) for m, p in zip(msgs, params, strict=True))))

    async def run() -> list[Any]:
        try:
            return await go()
        finally:
            close = getattr(model, "aclose", None)
            if close is not None:  # HTTP clients belong to this event loop
                await close()

    return asyncio.run(run())
