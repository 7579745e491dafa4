"""Word choice: intensity, valence and arousal of the context (last speaker turn) vs the response.

Per text and dimension the score is the MAXIMUM over its tokens' lexicon scores (0–1); texts with
no lexicon token have no score, and an example then has no difference for that dimension (counted
as missing, reported as coverage). ``diff = score(context) − score(response)`` (Lee et al. 2024,
signed) and ``abs = |diff|`` (EmPO). English: NRC Emotion Intensity (max over its 8 emotions) and
Warriner valence/arousal, or NRC-VAD from a user path. Japanese: ML-Ask classes mapped to
Russell's circumplex (see kyokan.metrics.lexicons.MLAsk).
"""

from __future__ import annotations

from typing import Any

from kyokan.metrics import lexicons as lx
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)
from kyokan.text import word_tokens

DIMS = ("intensity", "valence", "arousal")


def _max(lex: dict[str, float], toks: list[str]) -> float | None:
    vals = [lex[t] for t in toks if t in lex]
    return max(vals) if vals else None


class EnglishIVA:
    def __init__(self, nrc_vad_path: str | None = None) -> None:
        self.intensity = lx.intensity_lexicon()
        self.valence, self.arousal = lx.nrc_vad(nrc_vad_path) if nrc_vad_path else lx.warriner()

    def scores(self, text: str) -> dict[str, float | None]:
        toks = word_tokens(text)
        return {"intensity": _max(self.intensity.scores, toks), "valence": _max(self.valence.scores, toks),
                "arousal": _max(self.arousal.scores, toks)}

    def info(self) -> tuple[dict[str, Any], list[dict[str, str]]]:
        lexes = [self.intensity, self.valence, self.arousal]
        return ({"intensity": self.intensity.info(), "valence": self.valence.info(), "arousal": self.arousal.info(),
                 "tokenizer": "kyokan.text.word_tokens (surface forms, lower-cased; no lemmatisation)"},
                _unique([lex.license for lex in lexes]))


class JapaneseIVA:
    def __init__(self) -> None:
        self.m = lx.mlask()

    def scores(self, text: str) -> dict[str, float | None]:
        return self.m.scores(text)

    def info(self) -> tuple[dict[str, Any], list[dict[str, str]]]:
        return ({"lexicon": f"ML-Ask (mlask-official {self.m.version}, fugashi backend)",
                 "coordinates": {k: list(v) for k, v in self.m.coords.items()},
                 "mapping": "valence=(v+1)/2, arousal=(a+1)/2, intensity=min(1, sqrt(v^2+a^2)); max over detected classes"},
                [lx.MLASK_LICENSE])


def _unique(items: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    for it in items:
        if it and it not in seen:
            seen.append(it)
    return seen


@register_metric
class IvaMetric(ResponseMetric):
    name = "iva"
    definition = ("per text: max over tokens of lexicon scores (0-1); diff = score(last speaker turn) - score(response), "
                  "abs = |diff|; examples where either text has no lexicon word are missing for that dimension")

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        scorer: EnglishIVA | JapaneseIVA = (JapaneseIVA() if ctx.lang.startswith("ja")
                                            else EnglishIVA(ctx.options.get("nrc_vad")))
        rows: list[dict[str, float | int | None]] = []
        covered = dict.fromkeys(DIMS, 0)
        for ex in examples:
            c = scorer.scores(ex.context)
            r = scorer.scores(ex.response)
            row: dict[str, float | int | None] = {}
            for d in DIMS:
                cv, rv = c[d], r[d]
                row[f"{d}_context"] = cv
                row[f"{d}_response"] = rv
                diff = None if cv is None or rv is None else cv - rv
                row[f"{d}_diff"] = diff
                row[f"{d}_abs"] = None if diff is None else abs(diff)
                covered[d] += diff is not None
            rows.append(row)
        info, licenses = scorer.info()
        n = len(examples)
        return MetricOutput(rows, aggregate=[f"{d}_{k}" for d in DIMS for k in ("abs", "diff", "context", "response")],
                            system={"coverage": {d: (covered[d] / n if n else None) for d in DIMS}},
                            provenance=info, licenses=licenses)
