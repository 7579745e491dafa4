"""Harmful-content pre-screen: a hit flags a submission for the lead's keep/remove decision
(EmplifAI §3.4); nothing is ever deleted automatically.

Screeners are a registry: a new one is a class with ``name`` and ``check(texts)`` registered
with ``register_screener``. Keyword and personal-data screens run inline on every submission;
the LLM-judge harmlessness screen runs as a batch (``kyokan crowd screen --judge MODEL``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from kyokan.crowd.config import CrowdConfig
from kyokan.text import clean_text

BUILTIN_KEYWORDS = Path(__file__).with_name("harm_keywords.txt")


@dataclass
class Hit:
    screener: str
    match: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"screener": self.screener, "match": self.match, "detail": self.detail}


class Screener(Protocol):
    name: str

    def check(self, texts: Sequence[str]) -> list[Hit]: ...


def _fold(text: str) -> str:
    # clean_text: NFKC and no zero-width characters, so 死\u200bね matches 死ね
    return clean_text(text).casefold()


def load_keywords(path: Path = BUILTIN_KEYWORDS) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


@dataclass
class KeywordScreener:
    """Substring match for Japanese keywords, whole-word match for ASCII ones."""

    keywords: list[str]
    name: str = "keywords"
    _plain: list[tuple[str, str]] = field(default_factory=list, init=False, repr=False)
    _word: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        words = []
        for k in self.keywords:
            f = _fold(k).strip()
            if not f:
                continue
            if f.isascii():
                words.append(re.escape(f))
            else:
                self._plain.append((f, k))
        self._word = re.compile(r"\b(" + "|".join(words) + r")\b") if words else None

    def check(self, texts: Sequence[str]) -> list[Hit]:
        hits: list[Hit] = []
        seen: set[str] = set()
        for t in texts:
            f = _fold(t)
            for folded, orig in self._plain:
                if folded in f and orig not in seen:
                    seen.add(orig)
                    hits.append(Hit(self.name, orig))
            if self._word is not None:
                for m in self._word.finditer(f):
                    if m.group(1) not in seen:
                        seen.add(m.group(1))
                        hits.append(Hit(self.name, m.group(1)))
        return hits


_PII = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("url", re.compile(r"(https?://|www\.)\S+", re.I)),
    ("phone", re.compile(r"(?<!\d)(0\d{1,4}-?\d{1,4}-?\d{3,4})(?!\d)")),
]


@dataclass
class PersonalDataScreener:
    """E-mail addresses, URLs and Japanese phone numbers (crowd texts must stay anonymous)."""

    name: str = "personal_data"

    def check(self, texts: Sequence[str]) -> list[Hit]:
        hits = []
        for t in texts:
            f = clean_text(t)
            for kind, rx in _PII:
                m = rx.search(f)
                if m:
                    hits.append(Hit(self.name, m.group(0)[:80], kind))
        return hits


ScreenerFactory = Callable[[CrowdConfig], Screener]
_REGISTRY: dict[str, ScreenerFactory] = {}


def register_screener(name: str, factory: ScreenerFactory) -> None:
    """Add an inline screener (runs on every submission)."""
    _REGISTRY[name] = factory


@lru_cache(maxsize=8)
def _keyword_screener(builtin: bool, extra: tuple[str, ...]) -> KeywordScreener:
    # built once per keyword list, not on every submission (reading the file and compiling the
    # pattern cost more than the rest of a submission)
    return KeywordScreener((load_keywords() if builtin else []) + list(extra))


def _keywords(cfg: CrowdConfig) -> Screener:
    return _keyword_screener(bool(cfg.use_builtin_keywords), tuple(cfg.harm_keywords))


register_screener("keywords", _keywords)
register_screener("personal_data", lambda cfg: PersonalDataScreener())


def screeners(cfg: CrowdConfig) -> list[Screener]:
    return [f(cfg) for f in _REGISTRY.values()]


def prescreen(texts: Sequence[str], cfg: CrowdConfig, active: list[Screener] | None = None) -> list[dict[str, str]]:
    """Hits of every registered screener over the texts (empty list = clean)."""
    out: list[dict[str, str]] = []
    for s in active if active is not None else screeners(cfg):
        out.extend(h.to_dict() for h in s.check(texts))
    return out


# --- LLM-judge harmlessness (batch) ---------------------------------------------------------
HARMLESSNESS_PROMPT = {
    "ja": ("あなたは医療対話データの審査員です。次のテキストが無害かどうかを1〜5で評価してください"
           "（5=完全に無害、1=明らかに有害：暴言、差別、自傷の助長、危険な医療助言など）。"
           "最後に評価を [[数字]] の形式で一つだけ書いてください。\n\nテキスト:\n{text}"),
    "en": ("You review crowd-written medical dialogue data. Rate how harmless the text is from 1 to 5 "
           "(5 = entirely harmless, 1 = clearly harmful: abuse, discrimination, encouraging self-harm, "
           "dangerous medical advice). End with exactly one rating in the form [[n]].\n\nText:\n{text}"),
}
_SCORE = re.compile(r"\[\[\s*([1-5])\s*\]\]")


def parse_score(answer: str) -> int | None:
    """The last ``[[n]]`` in the answer; None when absent (never a default score)."""
    found = _SCORE.findall(answer)
    return int(found[-1]) if found else None


def judge_harmlessness(model: Any, texts: Sequence[str], lang: str = "ja", *, retries: int = 1,
                       concurrency: int = 8) -> list[dict[str, Any]]:
    """Score texts with a ``kyokan.models`` ChatModel; unparsable answers are retried, then
    reported with ``score: None`` (unscored, never counted as a score)."""
    from kyokan.models.base import GenerationParams

    prompt = HARMLESSNESS_PROMPT.get(lang, HARMLESSNESS_PROMPT["en"])
    params = GenerationParams(max_new_tokens=256, temperature=0.0)
    results: list[dict[str, Any]] = [{"score": None, "answer": "", "error": None} for _ in texts]
    todo = list(range(len(texts)))
    for _attempt in range(retries + 1):
        if not todo:
            break
        batch = [[{"role": "user", "content": prompt.format(text=texts[i])}] for i in todo]
        outs = model.batch(batch, params, concurrency=concurrency)
        again = []
        for i, o in zip(todo, outs, strict=True):
            if isinstance(o, BaseException):
                results[i].update(error=f"{type(o).__name__}: {o}")
                again.append(i)
                continue
            score = parse_score(o.text)
            results[i].update(answer=o.text[-500:], score=score, error=None if score else "unparsed")
            if score is None:
                again.append(i)
        todo = again
    return results
