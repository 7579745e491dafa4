"""Word choice: intensity, valence and arousal of the context (last speaker turn) vs the response.

Per text and dimension the score is the MAXIMUM over its tokens' lexicon scores (0–1). The metric
profile says what a token missing from the lexicon scores and what a text without lexicon words
scores: ``kyokan`` ignores misses and leaves such a text without a score (the example is then
missing for that dimension, reported as coverage); ``lee2024`` scores misses 0, so such a text
scores 0. ``diff = score(context) − score(response)`` (Lee et al. 2024, signed) and
``abs = |diff|`` (EmPO). English: NRC Emotion Intensity (packaged, or ``--intensity FILE``;
a word's entry per the profile's ``intensity_rule``) and Warriner valence/arousal, or NRC-VAD from
a user path (``--nrc-vad``). Japanese (profile ``kyokan`` only): ML-Ask classes mapped to Russell's
circumplex (see kyokan.metrics.lexicons.MLAsk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kyokan.metrics import lexicons as lx
from kyokan.metrics.profiles import MetricProfile, get_profile
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    ResponseMetric,
    register_metric,
)

DIMS = ("intensity", "valence", "arousal")


def text_score(lex: dict[str, float], toks: Sequence[str], miss: float | None, empty: float | None) -> float | None:
    """Max over the tokens' lexicon scores; a miss scores ``miss`` (None: ignored); a text with no
    scored token scores ``empty``."""
    vals = [lex[t] for t in toks if t in lex] if miss is None else [lex.get(t, miss) for t in toks]
    return max(vals) if vals else empty


class EnglishIVA:
    def __init__(self, nrc_vad_path: str | None = None, profile: MetricProfile | None = None,
                 intensity_path: str | None = None) -> None:
        self.profile = profile or get_profile("kyokan")
        rule = self.profile.intensity_rule
        self.intensity = lx.intensity_file(intensity_path, rule) if intensity_path else lx.intensity_lexicon(rule)
        self.valence, self.arousal = lx.nrc_vad(nrc_vad_path) if nrc_vad_path else lx.warriner()

    def scores(self, text: str) -> dict[str, float | None]:
        p = self.profile
        toks = p.lexicon_tokens(text, "en")
        return {d: text_score(lex.scores, toks, p.lexicon_miss, p.empty_text)
                for d, lex in (("intensity", self.intensity), ("valence", self.valence), ("arousal", self.arousal))}

    def info(self) -> tuple[dict[str, Any], list[dict[str, str]]]:
        lexes = [self.intensity, self.valence, self.arousal]
        p = self.profile
        return ({"intensity": self.intensity.info(), "valence": self.valence.info(), "arousal": self.arousal.info(),
                 "tokenizer": p.lexicon_tokenizer, "lexicon_miss": p.lexicon_miss, "empty_text": p.empty_text,
                 "intensity_rule": p.intensity_rule},
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
                  "abs = |diff|; a lexicon miss and a text without lexicon words follow the profile (kyokan: "
                  "ignored / missing for that dimension; lee2024: 0)")

    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        prof = get_profile(ctx.profile)
        scorer: EnglishIVA | JapaneseIVA = (JapaneseIVA() if ctx.lang.startswith("ja")
                                            else EnglishIVA(ctx.options.get("nrc_vad"), prof,
                                                            ctx.options.get("intensity")))
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
