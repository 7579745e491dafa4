"""The judging engine: format rule first, then judge calls (one per metric, or all in one), run
concurrently with a bound, answered from the cache when possible, re-asked when unreadable, and
written one row per dialogue as soon as the dialogue is finished.

The row (docs/judge.md)::

    {"id", "status": "ok"|"format_violation"|"unscored"|"partial", "scores": {metric: int|null},
     "expected_scores": {metric: float|null}, "argmax_scores": {metric: int|null},
     "score_probs": {metric: {"probs": {"1": p, ...}, "mass", "expected", "argmax"}|null},
     "scoring": "probabilities"|"text"|"mixed", "decoding": "grammar"|"response_format"|"free",
     "rationales": {metric: str|null}, "errors": {metric: {"kind", "message", "attempts"}},
     "source_model", "emotion", "lang", "response_chars", "judge": {...}, "usage": {...}}

Structure: a local judge (``hf:``, packaged, ``vllm:``) decodes under the answer's JSON schema, so
the answer always parses; an HTTP judge is sent the schema as ``response_format`` (a server may
ignore it: answers not valid under the schema are counted, ``usage.schema_invalid``). Where the
backend returns log-probabilities, each metric also gets the probability-weighted (G-Eval)
expected score (:mod:`kyokan.judge.probs`). A 4xx from the server (unknown model, bad parameter,
auth) is a configuration error: it stops the run (:class:`~kyokan.models.base.ServerConfigError`)
instead of leaving every row unscored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from kyokan.judge.cache import AnswerCache, CachedAnswer, cache_key
from kyokan.judge.formatrule import DEFAULT_EXCHANGES, format_violation, response_length
from kyokan.judge.parse import Parsed, parse_score, parse_scores
from kyokan.judge.probs import ScoreDistribution, mean_distribution, score_distributions
from kyokan.judge.prompts import (
    PROMPT_VERSION,
    all_in_one_messages,
    all_in_one_schema,
    per_metric_messages,
    reask_messages,
    score_schema,
)
from kyokan.judge.rubric import Rubric
from kyokan.models.base import (
    ChatModel,
    Completion,
    GenerationParams,
    Message,
    ServerConfigError,
    TokenLogprob,
    Usage,
)

STATUSES = ("ok", "format_violation", "unscored", "partial")
AGGREGATES = ("mean", "median")


class _Readable(Protocol):
    @property
    def ok(self) -> bool: ...

    error: str | None
    rationale: str | None


@dataclass
class JudgeConfig:
    """Everything that decides a judgement (all of it is recorded in every row)."""

    lang: str = "ja"
    all_in_one: bool = False
    #: repeated samples per judge (seed, seed+1, ...); aggregation over judges × samples
    samples: int = 1
    aggregate: str = "mean"
    seed: int = 0
    temperature: float = 0.0
    max_new_tokens: int = 512
    #: re-asks after an unparseable answer (so at most 1 + max_reasks answers per question)
    max_reasks: int = 2
    #: expected speaker→listener exchanges (0: any number ≥ 1)
    exchanges: int = DEFAULT_EXCHANGES
    #: judge calls in flight at once (over all dialogues and metrics)
    concurrency: int = 8
    #: ask for the answer's JSON schema: local judges decode under it, HTTP judges are sent it as
    #: ``response_format`` (turn off for endpoints that reject it)
    structured: bool = True
    #: probability-weighted (G-Eval) scores where the judge's backend returns log-probabilities
    probabilities: bool = True
    #: alternatives per token asked for with ``probabilities`` (OpenAI allows up to 20)
    top_logprobs: int = 10
    #: ask for a rationale before each score (False: scores only — for small token budgets)
    rationale: bool = True
    #: longest rationale a grammar-constrained judge may write, in characters (None: derived from
    #: ``max_new_tokens`` so that every metric fits; 0: no rationale)
    rationale_chars: int | None = None

    def params(self, schema: dict[str, Any] | None, sample: int, *, logprobs: bool = False) -> GenerationParams:
        return GenerationParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                seed=self.seed + sample, json_schema=schema if self.structured else None,
                                json_schema_name="judgement",
                                top_logprobs=self.top_logprobs if (logprobs and self.probabilities) else 0)

    def rationale_budget(self, n_metrics: int) -> int | None:
        """Characters of rationale per metric that a grammar-constrained answer can afford within
        ``max_new_tokens`` (None: no limit; 0: no rationale). Assumes ~15 tokens of JSON per
        metric and, conservatively, 2 characters per token in English and 1 in Japanese."""
        if not self.rationale:
            return 0
        if self.rationale_chars is not None:
            return max(0, self.rationale_chars)
        per = (self.max_new_tokens - 12) / max(1, n_metrics) - 16
        chars = int(per * (1 if self.lang == "ja" else 2))
        return chars if chars >= 16 else 0


@dataclass
class CallStats:
    """Counts for one row (and summed for a run)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: answers received from the model in this run
    calls: int = 0
    #: answers served from the cache
    cached: int = 0
    #: HTTP-level retries inside the model layer (429, 5xx, timeouts)
    retries: int = 0
    #: questions asked again because the answer was unparseable
    reasks: int = 0
    #: questions that failed for good at the transport level
    transport_failures: int = 0
    #: answers to a structured request (schema sent or enforced), and how many of them were not
    #: valid under the schema (a server ignoring ``response_format``, or a cut answer)
    structured_answers: int = 0
    schema_invalid: int = 0
    #: answers cut at max_new_tokens
    truncated: int = 0

    def add(self, o: CallStats) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(o, k))

    def to_dict(self) -> dict[str, int]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["total_tokens"] = self.prompt_tokens + self.completion_tokens
        return d


@dataclass
class Answered:
    """The outcome of one question (with its re-asks) to one judge: readings per key, or why not."""

    readings: dict[str, Any]
    #: key -> {"kind": "unparseable"|"transport", "message", "attempts"}
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: CallStats = field(default_factory=CallStats)
    #: key -> the judge's distribution over the scale points where it wrote that key's score
    probs: dict[str, ScoreDistribution] = field(default_factory=dict)
    #: how the answers were constrained: "grammar" | "response_format" | "free"
    decoding: str = "free"


def model_id(model: ChatModel) -> str:
    return model.spec or type(model).__name__


class Asker:
    """Asks one question of one judge model, through the cache and a shared concurrency bound,
    re-asking while the answer cannot be read (up to ``max_reasks``)."""

    def __init__(self, rubric: Rubric, config: JudgeConfig, cache: AnswerCache | None,
                 semaphore: asyncio.Semaphore) -> None:
        self.rubric = rubric
        self.config = config
        self.cache = cache
        self.sem = semaphore

    async def _complete(self, model: ChatModel, messages: list[Message], params: GenerationParams,
                        stats: CallStats) -> Completion:
        key = cache_key(model_id(model), params.to_dict(), self.rubric.version, messages)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                stats.cached += 1
                stats.prompt_tokens += hit.prompt_tokens
                stats.completion_tokens += hit.completion_tokens
                ex = hit.extra or {}
                lps = ex.get("logprobs")
                return Completion(hit.text, hit.response_model or "", Usage(hit.prompt_tokens, hit.completion_tokens),
                                  finish_reason=ex.get("finish_reason"), constrained=ex.get("constrained"),
                                  logprobs=[TokenLogprob(t, lp, tuple((a, alp) for a, alp in alts))
                                            for t, lp, alts in lps] if lps else None)
        async with self.sem:
            comp = await model.agenerate(messages, params)
        stats.calls += 1
        stats.retries += max(0, comp.attempts - 1)
        stats.prompt_tokens += comp.usage.prompt_tokens
        stats.completion_tokens += comp.usage.completion_tokens
        if self.cache is not None:
            extra: dict[str, Any] = {"finish_reason": comp.finish_reason, "constrained": comp.constrained}
            if comp.logprobs:
                extra["logprobs"] = [[t.token, t.logprob, [list(a) for a in t.top]] for t in comp.logprobs]
            self.cache.put(key, model_id(model), self.rubric.version,
                           CachedAnswer(comp.text, comp.model, comp.usage.prompt_tokens, comp.usage.completion_tokens,
                                        extra))
        return comp

    async def ask(self, model: ChatModel, messages: list[Message], params: GenerationParams,
                  keys: list[str], parse: Callable[[str], dict[str, Any]],
                  points: Sequence[int] | None = None) -> Answered:
        """Ask, re-asking while unreadable; with ``points`` (a score question) and log-probs in the
        answer, each read key also gets the judge's distribution over ``points``."""
        from kyokan.models.constrain import valid_json_answer

        out = Answered({})
        pending = list(keys)
        msgs = messages
        last_error: dict[str, str] = {}
        for attempt in range(self.config.max_reasks + 1):
            try:
                comp = await self._complete(model, msgs, params, out.stats)
            except ServerConfigError:
                raise  # the server refused the request as misconfigured: stop the run
            except Exception as e:  # ModelError after the model layer's own retries, or anything else
                out.stats.transport_failures += 1
                for k in pending:
                    out.errors[k] = {"kind": "transport", "message": f"{type(e).__name__}: {e}"[:500],
                                     "attempts": attempt + 1}
                return out
            text = comp.text
            if comp.finish_reason == "length":
                out.stats.truncated += 1
            if params.json_schema is not None:
                out.decoding = comp.constrained or "response_format"
                out.stats.structured_answers += 1
                if not valid_json_answer(text, params.json_schema):
                    out.stats.schema_invalid += 1
            readings = parse(text)
            dists = score_distributions(comp.logprobs, points, keys if len(keys) > 1 else None) if points else {}
            still: list[str] = []
            for k in pending:
                r: _Readable = readings[k]
                if r.ok:
                    out.readings[k] = r
                    d = dists.get(k if len(keys) > 1 else None)
                    if d is not None:
                        out.probs[k] = d
                else:
                    still.append(k)
                    last_error[k] = r.error or "unreadable"
            pending = still
            if not pending:
                return out
            if attempt < self.config.max_reasks:
                out.stats.reasks += 1
                why = "; ".join(f"{k}: {last_error[k]}" if len(keys) > 1 else last_error[k] for k in pending)
                # the whole exchange so far, so every re-ask is a new question (and a new cache key)
                msgs = reask_messages(msgs, text, why[:300], self.config.lang)
        for k in pending:
            out.errors[k] = {"kind": "unparseable", "message": last_error.get(k, "unreadable"),
                             "attempts": self.config.max_reasks + 1}
        return out


async def probe_models(models: Sequence[ChatModel]) -> None:
    """Let HTTP judges recognise their server (``OpenAIChatModel.probe``) before the judge records
    what each model can do."""
    for m in models:
        probe = getattr(m, "probe", None)
        if probe is not None:
            await probe()


def _caps(model: ChatModel) -> dict[str, Any]:
    try:
        return dict(model.capabilities())
    except Exception:  # a third-party backend without the method's contract
        return {}


def _decoding_of(model: ChatModel, c: JudgeConfig) -> str:
    """How a structured request to this judge is answered: "grammar" (constrained decoding),
    "response_format" (sent to a server), or "free" (no structure asked)."""
    if not c.structured:
        return "free"
    caps = _caps(model)
    return "grammar" if caps.get("grammar") else "response_format"


def _scoring_of(model: ChatModel, c: JudgeConfig) -> str:
    """ "probabilities" when the backend can return log-probs (expected scores too), else "text"."""
    return "probabilities" if (c.probabilities and _caps(model).get("logprobs")) else "text"


def judge_fingerprint(info: dict[str, Any]) -> str:
    """What must match for rows of an earlier run to count as done (addresses and timings excluded)."""
    keep = {k: info[k] for k in ("models", "rubric_version", "prompt_version", "lang", "mode", "samples",
                                  "aggregate", "params", "max_reasks", "exchanges", "structured", "probabilities",
                                  "rationale") if k in info}
    blob = json.dumps(keep, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def source_model(record: dict[str, Any]) -> str:
    """``meta.generation.model``, else ``meta.source``, else ``unknown``: the summary's row key."""
    m = record.get("meta")
    meta: dict[str, Any] = m if isinstance(m, dict) else {}
    g = meta.get("generation")
    gen: dict[str, Any] = g if isinstance(g, dict) else {}
    return str(gen.get("model") or meta.get("source") or "unknown")


def dialogue_id(record: dict[str, Any]) -> str:
    """The dialogue's own id: ``meta.dialogue_id`` where the caller made ``id`` unique per system
    (the pipeline's ``system::id``), else ``id``."""
    m = record.get("meta")
    did = m.get("dialogue_id") if isinstance(m, dict) else None
    return str(did if did not in (None, "") else record.get("id"))


class Judge:
    """Scores dialogues on a rubric with one or more judge models."""

    def __init__(self, models: Sequence[ChatModel], rubric: Rubric, config: JudgeConfig | None = None,
                 cache: AnswerCache | None = None) -> None:
        if not models:
            raise ValueError("at least one judge model")
        if config is not None and config.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}")
        self.models = list(models)
        self.rubric = rubric
        self.config = config or JudgeConfig()
        self.cache = cache
        self._sem: asyncio.Semaphore | None = None
        from kyokan import __version__

        c = self.config
        self.info: dict[str, Any] = {
            "models": [model_id(m) for m in self.models],
            "rubric": rubric.name,
            "rubric_version": rubric.version,
            "rubric_metrics": rubric.metric_ids,
            "prompt_version": PROMPT_VERSION,
            "lang": c.lang,
            "mode": "all_in_one" if c.all_in_one else "per_metric",
            "samples": c.samples,
            "aggregate": c.aggregate,
            "params": {"temperature": c.temperature, "seed": c.seed, "max_new_tokens": c.max_new_tokens,
                       "json_schema": c.structured},
            "max_reasks": c.max_reasks,
            "exchanges": c.exchanges,
            "structured": c.structured,
            "probabilities": c.probabilities,
            "rationale": c.rationale_budget(len(rubric.metric_ids) if c.all_in_one else 1) != 0,
            "decoding": {model_id(m): _decoding_of(m, c) for m in self.models},
            "scoring": {model_id(m): _scoring_of(m, c) for m in self.models},
            "kyokan_version": __version__,
        }
        notes = sorted({n for m in self.models if (n := _caps(m).get("note"))})
        if notes:
            self.info["server_notes"] = notes
        self.info["fingerprint"] = judge_fingerprint(self.info)

    # one dialogue -------------------------------------------------------------------------
    def _asker(self) -> Asker:
        if self._sem is None:
            self._sem = asyncio.Semaphore(max(1, self.config.concurrency))
        return Asker(self.rubric, self.config, self.cache, self._sem)

    async def ajudge(self, record: dict[str, Any]) -> dict[str, Any]:
        """The row for one dialogue record (a dict in kyokan's record format)."""
        rub, c = self.rubric, self.config
        metrics = rub.metric_ids
        row: dict[str, Any] = {"kind": "kyokan.judge.row", "version": 1, "id": str(record.get("id")),
                               "dialogue_id": dialogue_id(record), "status": "ok"}
        base = {"source_model": source_model(record), "emotion": record.get("emotion"),
                "lang": record.get("lang"), "response_chars": response_length(record)}
        why = format_violation(record, c.exchanges)
        if why is not None:
            row.update(status="format_violation", scores=dict.fromkeys(metrics, rub.scale_min),
                       expected_scores=dict.fromkeys(metrics, float(rub.scale_min)),
                       argmax_scores=dict.fromkeys(metrics, rub.scale_min), score_probs=dict.fromkeys(metrics),
                       scoring="format_rule", decoding="none",
                       rationales=dict.fromkeys(metrics), format_reason=why, **base,
                       judge=self.info, usage=CallStats().to_dict())
            return row
        asker = self._asker()
        jobs: list[Awaitable[tuple[str, Answered]]] = []

        async def tagged(jm: str, aw: Awaitable[Answered]) -> tuple[str, Answered]:
            return jm, await aw

        lo, hi = rub.scale_min, rub.scale_max
        points = rub.points
        n_rat = len(metrics) if c.all_in_one else 1
        for model in self.models:
            grammar = _caps(model).get("grammar", False)
            # a grammar-constrained judge must finish within max_new_tokens: bound the rationale
            budget = c.rationale_budget(n_rat) if grammar else (0 if not c.rationale else None)
            with_rat = budget != 0
            logprobs = _scoring_of(model, c) == "probabilities"
            for s in range(c.samples):
                if c.all_in_one:
                    msgs = all_in_one_messages(record, rub, c.lang, rationale=with_rat)
                    p = c.params(all_in_one_schema(rub, rationale_chars=budget), s, logprobs=logprobs)
                    jobs.append(tagged(model_id(model), asker.ask(
                        model, msgs, p, metrics, partial(parse_scores, metric_ids=metrics, lo=lo, hi=hi), points)))
                else:
                    for m in metrics:
                        msgs = per_metric_messages(record, rub, m, c.lang, rationale=with_rat)
                        p = c.params(score_schema(rub, rationale_chars=budget), s, logprobs=logprobs)
                        jobs.append(tagged(model_id(model), asker.ask(
                            model, msgs, p, [m], partial(_one_score, metric=m, lo=lo, hi=hi), points)))
        results = await asyncio.gather(*jobs)
        stats = CallStats()
        #: judge -> metric -> list over samples of (score|None, rationale|None, error|None, distribution|None)
        votes: dict[str, dict[str, list[tuple[int | None, str | None, dict[str, Any] | None,
                                              ScoreDistribution | None]]]] = {}
        decodings: set[str] = set()
        for jm, ans in results:
            stats.add(ans.stats)
            decodings.add(ans.decoding)
            per = votes.setdefault(jm, {m: [] for m in metrics})
            for m in metrics:
                if m in ans.readings:
                    r: Parsed = ans.readings[m]
                    per[m].append((r.score, r.rationale, None, ans.probs.get(m)))
                elif m in ans.errors:
                    per[m].append((None, None, ans.errors[m], None))
        scores: dict[str, float | int | None] = {}
        expected: dict[str, float | None] = {}
        argmax: dict[str, int | None] = {}
        probs: dict[str, dict[str, Any] | None] = {}
        rationales: dict[str, str | None] = {}
        errors: dict[str, dict[str, Any]] = {}
        missing_votes = 0
        with_probs = 0
        for m in metrics:
            dists = [v[3] for jm in votes for v in votes[jm][m] if v[0] is not None and v[3] is not None]
            md = mean_distribution(dists)
            expected[m] = round(md.expected, 4) if md is not None else None
            argmax[m] = md.argmax if md is not None else None
            probs[m] = md.to_dict() if md is not None else None
            vals = [v[0] for jm in votes for v in votes[jm][m] if v[0] is not None]
            if vals and md is not None:
                with_probs += 1
            missing_votes += sum(1 for jm in votes for v in votes[jm][m] if v[0] is None)
            rationales[m] = next((v[1] for jm in votes for v in votes[jm][m] if v[1]), None)
            errs = [v[2] for jm in votes for v in votes[jm][m] if v[2] is not None]
            if errs:
                errors[m] = errs[0] if len(errs) == 1 else {**errs[0], "count": len(errs)}
            scores[m] = _aggregate(vals, c.aggregate) if vals else None
        n_scored = sum(1 for m in metrics if scores[m] is not None)
        if n_scored == 0:
            row["status"] = "unscored"
        elif n_scored < len(metrics) or missing_votes:
            row["status"] = "partial"
        row.update(scores=scores, expected_scores=expected, argmax_scores=argmax, score_probs=probs,
                   scoring="probabilities" if with_probs == n_scored and n_scored else ("mixed" if with_probs else "text"),
                   decoding="/".join(sorted(decodings)) if decodings else "free", rationales=rationales)
        if errors:
            row["errors"] = errors
        row.update(base)
        if len(self.models) > 1 or c.samples > 1:
            row["votes"] = {jm: {m: [v[0] for v in votes[jm][m]] for m in metrics} for jm in votes}
        row["judge"] = self.info
        row["usage"] = stats.to_dict()
        return row

    # many dialogues ----------------------------------------------------------------------------
    async def astream(self, records: Iterable[dict[str, Any]], window: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Rows as dialogues finish (not in input order), with at most ``window`` dialogues open."""
        width = window or max(8, 2 * self.config.concurrency)
        it = iter(records)
        pending: set[asyncio.Task[dict[str, Any]]] = set()
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < width:
                    rec = next(it, None)
                    if rec is None:
                        exhausted = True
                        break
                    pending.add(asyncio.ensure_future(self.ajudge(rec)))
                if not pending:
                    return
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    yield t.result()
        finally:
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def aclose(self) -> None:
        for m in self.models:
            await m.aclose()


def _one_score(text: str, metric: str, lo: int, hi: int) -> dict[str, Any]:
    return {metric: parse_score(text, lo, hi)}


def _aggregate(vals: list[int], how: str) -> float | int:
    if len(vals) == 1:
        return vals[0]
    x = statistics.median(vals) if how == "median" else statistics.fmean(vals)
    return int(x) if float(x).is_integer() and len(set(vals)) == 1 else round(float(x), 4)
