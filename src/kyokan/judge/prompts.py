"""Judge prompts in Japanese and English: one metric per call (the paper's way), all metrics in one
call, pairwise comparison, and the follow-up that re-asks after an unparseable answer.

Every prompt asks for JSON (``rationale`` then ``score``) and, as a fallback for endpoints without
structured output, for the score written as ``[[n]]``. ``PROMPT_VERSION`` changes whenever the
wording changes; it is recorded with every result (and the messages themselves key the cache).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from kyokan.judge.rubric import Metric, Rubric, language_name
from kyokan.models.base import Message

PROMPT_VERSION = "judge-prompts-1"

_T: dict[str, dict[str, str]] = {
    "ja": {
        "system": "あなたは医療場面における共感的対話の専門評価者です。患者（話し手）と応答者（聞き手）の対話を、"
                  "与えられた評価基準に厳密に従って公平に評価してください。対話の長さや文体の丁寧さだけで評価を"
                  "上げ下げしないでください。",
        "speaker": "患者", "listener": "応答者",
        "situation": "状況", "emotion": "患者の感情（データのラベル）", "dialogue": "対話",
        "metric": "評価指標", "definition": "定義", "scale": "評価尺度",
        "task_one": "上の対話の応答者を「{name}」について{lo}〜{hi}の整数で評価してください。",
        "answer_one": "簡潔な根拠を添えて、次の形式の JSON だけを出力してください："
                      '{{"rationale": "根拠", "score": 整数}}。JSON を出力できない場合は、最後に [[点数]] の形で'
                      "点数を書いてください（例：[[3]]）。",
        "task_all": "上の対話の応答者を、次の各指標について{lo}〜{hi}の整数で評価してください。",
        "answer_all": '次の形式の JSON だけを出力してください：{{"scores": {{"指標ID": {{"rationale": "根拠", '
                      '"score": 整数}}, ...}}}}。指標IDは {ids} です。JSON を出力できない場合は、指標ごとに'
                      "1行で「指標ID: [[点数]]」と書いてください。",
        "task_pair": "同じ状況についての二つの対話 A と B を比べ、「{name}」について応答者がより優れているのは"
                     "どちらか判定してください。提示の順序に左右されないでください。",
        "answer_pair": '次の形式の JSON だけを出力してください：{{"rationale": "根拠", "winner": "A" | "B" | "tie"}}。'
                       "JSON を出力できない場合は、最後に [[A]]、[[B]]、[[C]]（引き分け）のいずれかを書いてください。",
        "task_pair_all": "同じ状況についての二つの対話 A と B を比べ、次の各指標について応答者がより優れているのは"
                         "どちらか判定してください。提示の順序に左右されないでください。",
        "answer_pair_all": '次の形式の JSON だけを出力してください：{{"winners": {{"指標ID": {{"rationale": "根拠", '
                           '"winner": "A" | "B" | "tie"}}, ...}}}}。指標IDは {ids} です。',
        "reask": "先ほどの回答は指定の形式として読み取れませんでした（{why}）。説明は不要です。"
                 "指定した JSON 形式だけで、もう一度回答してください。",
        "answer_one_brief": '次の形式の JSON だけを出力してください：{{"score": 整数}}。JSON を出力できない場合は、'
                            "点数を [[点数]] の形で書いてください（例：[[3]]）。",
        "answer_all_brief": '次の形式の JSON だけを出力してください：{{"scores": {{"指標ID": 整数, ...}}}}。'
                            "指標IDは {ids} です。JSON を出力できない場合は、指標ごとに1行で「指標ID: [[点数]]」と"
                            "書いてください。",
    },
    "en": {
        "system": "You are an expert evaluator of empathetic dialogue in medical settings. Rate the dialogue "
                  "between a patient (speaker) and a responder (listener) fairly and strictly by the given "
                  "rubric. Do not let length or politeness alone raise or lower a score.",
        "speaker": "Patient", "listener": "Responder",
        "situation": "Situation", "emotion": "Patient's emotion (dataset label)", "dialogue": "Dialogue",
        "metric": "Metric", "definition": "Definition", "scale": "Scale",
        "task_one": "Rate the responder in the dialogue above on \"{name}\" with an integer from {lo} to {hi}.",
        "answer_one": "Output only JSON of this form, with a brief rationale: "
                      '{{"rationale": "...", "score": <integer>}}. If you cannot output JSON, end your answer '
                      "with the score written as [[n]] (e.g. [[3]]).",
        "task_all": "Rate the responder in the dialogue above on each of these metrics with an integer from "
                    "{lo} to {hi}.",
        "answer_all": 'Output only JSON of this form: {{"scores": {{"<metric id>": {{"rationale": "...", '
                      '"score": <integer>}}, ...}}}}. The metric ids are {ids}. If you cannot output JSON, '
                      "write one line per metric: \"<metric id>: [[n]]\".",
        "task_pair": "Compare the two dialogues A and B about the same situation and decide in which the "
                     "responder is better on \"{name}\". Do not let the order of presentation affect you.",
        "answer_pair": 'Output only JSON of this form: {{"rationale": "...", "winner": "A" | "B" | "tie"}}. '
                       "If you cannot output JSON, end with [[A]], [[B]] or [[C]] (a tie).",
        "task_pair_all": "Compare the two dialogues A and B about the same situation and decide, for each of "
                         "these metrics, in which the responder is better. Do not let the order of "
                         "presentation affect you.",
        "answer_pair_all": 'Output only JSON of this form: {{"winners": {{"<metric id>": {{"rationale": "...", '
                           '"winner": "A" | "B" | "tie"}}, ...}}}}. The metric ids are {ids}.',
        "reask": "Your previous answer could not be read in the requested format ({why}). No explanation "
                 "needed: answer again with the requested JSON only.",
        "answer_one_brief": 'Output only JSON of this form: {{"score": <integer>}}. If you cannot output JSON, '
                            "write the score as [[n]] (e.g. [[3]]).",
        "answer_all_brief": 'Output only JSON of this form: {{"scores": {{"<metric id>": <integer>, ...}}}}. '
                            'The metric ids are {ids}. If you cannot output JSON, write one line per '
                            'metric: "<metric id>: [[n]]".',
    },
}


def texts(lang: str) -> dict[str, str]:
    return _T["ja" if lang == "ja" else "en"]


@cache
def emotion_name(label: str | None, lang: str) -> str | None:
    """The label's name in the prompt language, from the built-in taxonomies (the id otherwise)."""
    if not label:
        return None
    from kyokan.taxonomy import get_taxonomy

    for tax in ("goemotions28", "ed32", "plutchik8"):
        try:
            t = get_taxonomy(tax)
        except Exception:  # pragma: no cover - a broken install
            continue
        if label in t:
            return t.label(label).name(lang)
    return label


def render_dialogue(record: dict[str, Any], lang: str) -> str:
    t = texts(lang)
    lines = []
    for turn in record.get("turns") or []:
        who = t["speaker"] if turn.get("role") == "speaker" else t["listener"]
        lines.append(f"{who}: {turn.get('text', '')}")
    return "\n".join(lines)


def _context(record: dict[str, Any], lang: str) -> list[str]:
    t = texts(lang)
    parts = []
    if record.get("situation"):
        parts.append(f"# {t['situation']}\n{record['situation']}")
    emo = emotion_name(record.get("emotion"), lang)
    if emo:
        parts.append(f"# {t['emotion']}\n{emo}")
    return parts


def _metric_block(m: Metric, rubric: Rubric, lang: str, language: str, with_id: bool = False) -> str:
    t = texts(lang)
    head = f"# {t['metric']}: {m.text('name', lang, language)}" + (f" (id: {m.id})" if with_id else "")
    anchors = "\n".join(f"{p}: {m.anchor(p, lang, language)}" for p in rubric.points)
    return f"{head}\n{t['definition']}: {m.text('definition', lang, language)}\n{t['scale']}:\n{anchors}"


def dialogue_language(record: dict[str, Any], lang: str) -> str:
    return language_name(str(record.get("lang") or lang), lang)


def per_metric_messages(record: dict[str, Any], rubric: Rubric, metric_id: str, lang: str,
                        rationale: bool = True) -> list[Message]:
    t = texts(lang)
    language = dialogue_language(record, lang)
    m = rubric.metric(metric_id)
    body = [*_context(record, lang), f"# {t['dialogue']}\n{render_dialogue(record, lang)}",
            _metric_block(m, rubric, lang, language),
            t["task_one"].format(name=m.text("name", lang, language), lo=rubric.scale_min, hi=rubric.scale_max)
            + "\n" + t["answer_one" if rationale else "answer_one_brief"].format()]
    return [{"role": "system", "content": t["system"]}, {"role": "user", "content": "\n\n".join(body)}]


def all_in_one_messages(record: dict[str, Any], rubric: Rubric, lang: str, rationale: bool = True) -> list[Message]:
    t = texts(lang)
    language = dialogue_language(record, lang)
    blocks = [_metric_block(m, rubric, lang, language, with_id=True) for m in rubric.metrics]
    ids = ", ".join(rubric.metric_ids)
    body = [*_context(record, lang), f"# {t['dialogue']}\n{render_dialogue(record, lang)}",
            t["task_all"].format(lo=rubric.scale_min, hi=rubric.scale_max), *blocks,
            t["answer_all" if rationale else "answer_all_brief"].format(ids=ids)]
    return [{"role": "system", "content": t["system"]}, {"role": "user", "content": "\n\n".join(body)}]


def pairwise_messages(a: dict[str, Any], b: dict[str, Any], rubric: Rubric, metric_ids: list[str],
                      lang: str) -> list[Message]:
    """A (shown first) vs B; ``metric_ids`` of one metric asks for one winner, several for all."""
    t = texts(lang)
    language = dialogue_language(a, lang)
    body = [*_context(a, lang),
            f"# {t['dialogue']} A\n{render_dialogue(a, lang)}",
            f"# {t['dialogue']} B\n{render_dialogue(b, lang)}"]
    if len(metric_ids) == 1:
        m = rubric.metric(metric_ids[0])
        body += [_metric_block(m, rubric, lang, language),
                 t["task_pair"].format(name=m.text("name", lang, language)) + "\n" + t["answer_pair"].format()]
    else:
        body += [t["task_pair_all"],
                 *(_metric_block(rubric.metric(i), rubric, lang, language, with_id=True) for i in metric_ids),
                 t["answer_pair_all"].format(ids=", ".join(metric_ids))]
    return [{"role": "system", "content": t["system"]}, {"role": "user", "content": "\n\n".join(body)}]


def reask_messages(messages: list[Message], bad_answer: str, why: str, lang: str) -> list[Message]:
    """The conversation so far plus the unreadable answer and a request to answer in the format."""
    return [*messages, {"role": "assistant", "content": bad_answer},
            {"role": "user", "content": texts(lang)["reask"].format(why=why)}]


# JSON schemas for OpenAI-style ``response_format`` (strict mode: enums, no min/max) and for local
# grammar-constrained decoding (which may bound the rationale: ``maxLength``) -----------------------

def score_schema(rubric: Rubric, rationale_chars: int | None = None) -> dict[str, Any]:
    """``{"rationale", "score"}`` — the rationale first, so the score follows the reasoning;
    ``rationale_chars``: None = unbounded, 0 = no rationale, n = at most n characters."""
    score = {"type": "integer", "enum": rubric.points}
    if rationale_chars == 0:
        return {"type": "object", "properties": {"score": score}, "required": ["score"],
                "additionalProperties": False}
    rat: dict[str, Any] = {"type": "string"}
    if rationale_chars is not None:
        rat["maxLength"] = rationale_chars
    return {"type": "object",
            "properties": {"rationale": rat, "score": score},
            "required": ["rationale", "score"], "additionalProperties": False}


def all_in_one_schema(rubric: Rubric, rationale_chars: int | None = None) -> dict[str, Any]:
    """``{"scores": {metric: {"rationale", "score"}}}``; without rationale (``rationale_chars=0``)
    the flat ``{"scores": {metric: score}}`` (about 6 tokens a metric)."""
    one: dict[str, Any] = score_schema(rubric, rationale_chars)
    if rationale_chars == 0:
        one = {"type": "integer", "enum": rubric.points}
    return {"type": "object",
            "properties": {"scores": {"type": "object",
                                      "properties": {m: one for m in rubric.metric_ids},
                                      "required": rubric.metric_ids, "additionalProperties": False}},
            "required": ["scores"], "additionalProperties": False}


def winner_schema(rationale_chars: int | None = None) -> dict[str, Any]:
    """``{"rationale", "winner"}``; ``rationale_chars`` as in :func:`score_schema`."""
    winner = {"type": "string", "enum": ["A", "B", "tie"]}
    if rationale_chars == 0:
        return {"type": "object", "properties": {"winner": winner}, "required": ["winner"],
                "additionalProperties": False}
    rat: dict[str, Any] = {"type": "string"}
    if rationale_chars is not None:
        rat["maxLength"] = rationale_chars
    return {"type": "object", "properties": {"rationale": rat, "winner": winner},
            "required": ["rationale", "winner"], "additionalProperties": False}


def pairwise_all_schema(metric_ids: list[str], rationale_chars: int | None = None) -> dict[str, Any]:
    one = winner_schema(rationale_chars)
    return {"type": "object",
            "properties": {"winners": {"type": "object", "properties": {m: one for m in metric_ids},
                                       "required": metric_ids, "additionalProperties": False}},
            "required": ["winners"], "additionalProperties": False}
