"""Prompt templates for the two generation tasks of the papers, in Japanese and English.

- ``dialogue`` (EmplifAI §5.1): given an emotion and a situation, write an N-exchange
  speaker/listener (patient/supporter) dialogue in a fixed tagged format;
- ``response`` (EmPO): given the dialogue so far, write the listener's next response. The
  ``chat`` style gives the dialogue as chat turns (speaker → user, listener → assistant), as EmPO
  prompted Zephyr; the ``transcript`` style puts it in one user message (for base models).

``length_control`` adds EmPO's length-controlled-baseline instruction ("keep it short") to the
system prompt; pair it with a lower ``max_new_tokens``. Templates are versioned; the name and
version go into every generated row. A template file (TOML or JSON with the same fields) can
replace a built-in one.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.models.base import Message

TASKS = ("dialogue", "response")
STYLES = ("chat", "transcript")


@dataclass(frozen=True)
class PromptTemplate:
    """Strings with ``{placeholders}``: ``{emotion}``, ``{situation}``, ``{exchanges}``,
    ``{turns}`` (2 × exchanges), ``{format}`` (the tagged example lines), ``{transcript}`` (the
    dialogue so far), ``{speaker}``/``{listener}`` (the tags), ``{target}`` (length target)."""

    name: str
    task: str
    lang: str
    version: str
    system: str
    user: str
    speaker_tag: str
    listener_tag: str
    #: one example line per role in the format block, e.g. "{tag}：（患者の発言）"
    speaker_example: str
    listener_example: str
    #: appended to the system prompt under length control; ``{target}`` is filled in
    length_instruction: str
    #: characters for Japanese, words for English
    default_target: int
    length_unit: str
    colon: str = ": "

    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def digest(self) -> str:
        blob = json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]

    def _fields(self, record: dict[str, Any], emotion: str, exchanges: int, target: int) -> dict[str, Any]:
        lines = []
        for _ in range(exchanges):
            lines.append(self.speaker_example.format(tag=self.speaker_tag))
            lines.append(self.listener_example.format(tag=self.listener_tag))
        return {"emotion": emotion, "situation": record.get("situation", ""), "exchanges": exchanges,
                "turns": 2 * exchanges, "format": "\n".join(lines), "speaker": self.speaker_tag,
                "listener": self.listener_tag, "speaker_lc": self.speaker_tag.lower(),
                "listener_lc": self.listener_tag.lower(), "target": target, "transcript": ""}

    def placeholders(self) -> tuple[str, ...]:
        """The example texts of the format block (a model that copies them broke the format)."""
        out = []
        for ex, tag in ((self.speaker_example, self.speaker_tag), (self.listener_example, self.listener_tag)):
            line = ex.format(tag=tag)
            from kyokan.generate.parse import match_tag, strip_quotes

            m = match_tag(line)
            out.append(strip_quotes(m[1]) if m else line)
        return tuple(out)

    def system_prompt(self, fields: dict[str, Any], length_control: bool) -> str:
        sys = self.system.format(**fields).strip()
        if length_control:
            sys = (sys + "\n" + self.length_instruction.format(**fields)).strip()
        return sys

    def transcript(self, turns: list[dict[str, str]]) -> str:
        return "\n".join(f"{self.speaker_tag if t['role'] == 'speaker' else self.listener_tag}{self.colon}{t['text']}"
                         for t in turns)

    def dialogue_messages(self, record: dict[str, Any], *, emotion: str, exchanges: int,
                          length_control: bool = False, target: int | None = None) -> list[Message]:
        f = self._fields(record, emotion, exchanges, target or self.default_target)
        msgs: list[Message] = []
        sys = self.system_prompt(f, length_control)
        if sys:
            msgs.append({"role": "system", "content": sys})
        msgs.append({"role": "user", "content": self.user.format(**f).strip()})
        return msgs

    def response_messages(self, record: dict[str, Any], context: list[dict[str, str]], *, emotion: str,
                          style: str = "chat", length_control: bool = False,
                          target: int | None = None) -> list[Message]:
        f = self._fields(record, emotion, 1, target or self.default_target)
        msgs: list[Message] = []
        sys = self.system_prompt(f, length_control)
        if sys:
            msgs.append({"role": "system", "content": sys})
        if style == "chat":
            for t in context:
                msgs.append({"role": "user" if t["role"] == "speaker" else "assistant", "content": t["text"]})
        elif style == "transcript":
            f["transcript"] = self.transcript(context)
            msgs.append({"role": "user", "content": self.user.format(**f).strip()})
        else:
            raise KyokanError(f"unknown prompt style {style!r} (chat or transcript)")
        return msgs


_JA_DIALOGUE = PromptTemplate(
    name="emplifai-dialogue-ja", task="dialogue", lang="ja", version="1",
    system="あなたは、病気や治療と向き合う患者と、その気持ちに寄り添う支援者との対話を書く書き手です。",
    user=("次の状況で「{emotion}」という感情を抱いている{speaker}と、{listener}との{exchanges}往復の対話を書いてください。\n\n"
          "状況：{situation}\n感情：{emotion}\n\n"
          "次の形式を厳密に守り、{turns}行の対話だけを書いてください。説明や前置きは書かないでください。\n{format}"),
    speaker_tag="患者", listener_tag="支援者",
    speaker_example="{tag}：（{tag}の発言）", listener_example="{tag}：（{tag}の返答）",
    length_instruction="各発言は短く、{target}字程度にしてください。", default_target=60, length_unit="chars",
    colon="：",
)

_EN_DIALOGUE = PromptTemplate(
    name="emplifai-dialogue-en", task="dialogue", lang="en", version="1",
    system="You write dialogues between a patient living with an illness and a supporter who responds with empathy.",
    user=("Write a dialogue of {exchanges} exchanges between a {speaker_lc} who feels {emotion} in the situation "
          "below and a {listener_lc}.\n\nSituation: {situation}\nEmotion: {emotion}\n\n"
          "Follow this format exactly and write only the {turns} lines of the dialogue, with no explanation:\n{format}"),
    speaker_tag="Patient", listener_tag="Supporter",
    speaker_example="{tag}: <what the patient says>", listener_example="{tag}: <what the supporter says>",
    length_instruction="Keep each turn short: about {target} words.", default_target=15, length_unit="words",
)

_JA_RESPONSE = PromptTemplate(
    name="empo-response-ja", task="response", lang="ja", version="1",
    system="あなたは相手の気持ちに寄り添って話を聞く聞き手です。相手の最後の発言に、聞き手として一度だけ返答してください。",
    user=("次は{speaker}と{listener}の対話です。{listener}の次の返答だけを書いてください。\n\n{transcript}\n{listener}："),
    speaker_tag="患者", listener_tag="支援者",
    speaker_example="{tag}：（{tag}の発言）", listener_example="{tag}：（{tag}の返答）",
    length_instruction="返答は短く、{target}字程度にしてください。", default_target=60, length_unit="chars",
    colon="：",
)

_EN_RESPONSE = PromptTemplate(
    name="empo-response-en", task="response", lang="en", version="1",
    system="You are an empathetic listener. Reply once, as the listener, to the speaker's last message.",
    user="Here is a conversation. Write only the {listener_lc}'s next reply.\n\n{transcript}\n{listener}:",
    speaker_tag="Speaker", listener_tag="Listener",
    speaker_example="{tag}: <what the speaker says>", listener_example="{tag}: <what the listener says>",
    length_instruction="Keep your reply short: about {target} words.", default_target=15, length_unit="words",
)

_TEMPLATES: dict[tuple[str, str], PromptTemplate] = {}


def register_template(t: PromptTemplate) -> PromptTemplate:
    if t.task not in TASKS:
        raise KyokanError(f"template {t.name!r}: task must be one of {', '.join(TASKS)}")
    _TEMPLATES[(t.task, t.lang)] = t
    return t


for _t in (_JA_DIALOGUE, _EN_DIALOGUE, _JA_RESPONSE, _EN_RESPONSE):
    register_template(_t)


def templates() -> dict[tuple[str, str], PromptTemplate]:
    return dict(_TEMPLATES)


def get_template(task: str, lang: str) -> PromptTemplate:
    """The template for a task and language (``ja*`` → Japanese, anything else → English)."""
    if task not in TASKS:
        raise KyokanError(f"unknown task {task!r} (dialogue or response)")
    key = (task, "ja" if lang.lower().startswith("ja") else lang.lower())
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    return _TEMPLATES[(task, "en")]


def load_template_file(path: str | Path, task: str, lang: str) -> PromptTemplate:
    """A template from TOML/JSON: any :class:`PromptTemplate` fields, the rest from the built-in
    template for ``task``/``lang`` (so a file may override just ``system`` and ``user``)."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
        data = tomllib.loads(raw) if p.suffix.lower() == ".toml" else json.loads(raw)
    except FileNotFoundError:
        raise KyokanError(f"{p}: template file not found") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise KyokanError(f"{p}: not valid {'TOML' if p.suffix.lower() == '.toml' else 'JSON'}: {e}") from None
    base = get_template(data.get("task", task), data.get("lang", lang))
    known = set(asdict(base))
    unknown = sorted(set(data) - known)
    if unknown:
        raise KyokanError(f"{p}: unknown template field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    data.setdefault("name", f"{p.stem}")
    data.setdefault("version", "file-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8])
    t = replace(base, **data)
    # check the placeholders now rather than at row 1
    try:
        if t.task == "dialogue":
            t.dialogue_messages({"situation": "s"}, emotion="e", exchanges=2, length_control=True)
        else:
            t.response_messages({"situation": "s"}, [{"role": "speaker", "text": "x"}], emotion="e",
                                style="transcript", length_control=True)
    except (KeyError, IndexError, ValueError) as e:
        raise KyokanError(f"{p}: bad placeholder in the template: {e}") from None
    return t
