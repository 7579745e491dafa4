"""Rating scales of the two survey styles: EmplifAI's 7 metrics on a 5-point Likert scale and
EmPO's 4 dimensions on 0–100 sliders plus an understandable/consistent checkbox."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["likert", "slider", "binary"]


@dataclass(frozen=True)
class Scale:
    name: str
    en: str
    ja: str
    kind: Kind
    low: float
    high: float
    statement_en: str = ""
    statement_ja: str = ""

    @property
    def integer(self) -> bool:
        return self.kind in ("likert", "binary")

    def parse(self, raw: Any) -> float:
        """A rating value, or ValueError with a message for the user."""
        if self.kind == "binary":
            if isinstance(raw, bool):
                return float(raw)
            s = str(raw).strip().lower()
            if s in ("1", "1.0", "true", "yes", "y", "checked", "on"):
                return 1.0
            if s in ("0", "0.0", "false", "no", "n", "unchecked", "off"):
                return 0.0
            raise ValueError(f"{raw!r} is not a checkbox value (1/0, true/false, yes/no)")
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not a number")
        if isinstance(raw, int | float):
            v = float(raw)
        else:
            try:
                v = float(str(raw).strip())
            except ValueError:
                raise ValueError(f"not a number: {raw!r}") from None
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"not a number: {raw!r}")
        if self.kind == "likert" and v != int(v):
            raise ValueError(f"{raw} is not a whole number on the {int(self.low)}–{int(self.high)} scale")
        if not self.low <= v <= self.high:
            lo, hi = (int(self.low), int(self.high))
            raise ValueError(f"{raw} is outside the {lo}–{hi} scale")
        return v

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scale:
        return cls(**d)


def _likert(name: str, en: str, ja: str, st_en: str, st_ja: str) -> Scale:
    return Scale(name, en, ja, "likert", 1, 5, st_en, st_ja)


#: EmplifAI Table 3, in the paper's order; names match the judge's metric ids
EMPLIFAI_METRICS: tuple[Scale, ...] = (
    _likert("content_comprehensibility", "Content Comprehensibility", "内容理解度",
            "How well the responder understands the situation and the patient's statements.",
            "応答者が状況と患者の発言をどの程度理解しているか。"),
    _likert("general_empathy", "General Empathy", "一般的共感",
            "How warmly and supportively the responder acknowledges and validates the patient's feelings.",
            "応答者が患者の気持ちをどの程度温かく支持的に受け止め、認めているか。"),
    _likert("emotion_specific_empathy", "Emotion Specific Empathy", "感情特異的共感",
            "How accurately the responder identifies the patient's exact emotion and tailors the response to it.",
            "応答者が患者の感情を正確に捉え、それに合わせて応答しているか。"),
    _likert("consistency", "Consistency", "文脈との一貫性",
            "How closely the responder's answers stay aligned with the topic of conversation.",
            "応答者の返答が会話の話題にどの程度沿っているか。"),
    _likert("fluency", "Fluency", "日本語の流暢さ",
            "The naturalness and grammatical accuracy of the Japanese in the conversation.",
            "会話中の日本語の自然さと文法的な正確さ。"),
    _likert("harmlessness", "Harmlessness", "無害性",
            "How free the responder's answers are of potential harm to the patient (5 = no risk of harm).",
            "応答者の返答が患者に害を及ぼす可能性がどの程度低いか（5 = 害の恐れなし）。"),
    _likert("sense_of_security", "Sense of Security", "安心感",
            "How much the responder's answers help calm the patient and give a feeling of safety.",
            "応答者の返答が患者を落ち着かせ、安心感を与えているか。"),
)

#: EmPO Table 8
EMPO_DIMENSIONS: tuple[Scale, ...] = (
    Scale("emotion_understanding", "Emotion Understanding", "感情理解", "slider", 0, 100,
          "The listener addresses the speaker's emotional state, specifically.",
          "聞き手は話し手の感情状態に具体的に触れている。"),
    Scale("situational_appropriateness", "Situational Appropriateness", "状況への適切さ", "slider", 0, 100,
          "The listener's response is appropriate to the speaker's situation.",
          "聞き手の応答は話し手の状況に適切である。"),
    Scale("contextual_naturalness", "Contextual Naturalness", "文脈上の自然さ", "slider", 0, 100,
          "The listener's response is completely natural in the context of this conversation.",
          "聞き手の応答はこの会話の文脈において完全に自然である。"),
    Scale("conversational_engagingness", "Conversational Engagingness", "会話の継続意欲", "slider", 0, 100,
          "I would like to continue the conversation with this listener.",
          "この聞き手と会話を続けたい。"),
    Scale("understandable_consistent", "Understandable & Consistent", "理解可能・一貫性", "binary", 0, 1,
          "The listener's responses were both understandable and consistent with the rest of the dialogue.",
          "聞き手の応答は理解でき、対話の他の部分と一貫していた。"),
)


def labels(scales: tuple[Scale, ...] | list[Scale], lang: str = "en") -> dict[str, str]:
    return {s.name: (s.ja if lang == "ja" else s.en) for s in scales}
