"""The judging engine: format rule first, then judge calls (one per metric, or all in one), run
concurrently with a bound, answered from the cache when possible, re-asked when unreadable, and
written one row per dialogue as soon as the dialogue is finished.

The row (docs/judge.md)::

    {"id", "status": "ok"|"format_violation"|"unscored"|"partial", "scores": {metric: int|null},
     "rationales": {metric: str|null}, "errors": {metric: {"kind", "message", "attempts"}},
     "source_model", "emotion", "lang", "response_chars", "judge": {...}, "usage": {...}}
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
from kyokan.judge.prompts import (
    PROMPT_VERSION,
    all_in_one_messages,
    all_in_one_schema,
    per_metric_messages,
    reask_messages,
    score_schema,
)
from kyokan.judge.rubric import Rubric
from kyokan.models.base import ChatModel, GenerationParams, Message

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
    #: send ``response_format`` json_schema (turn off for endpoints that reject it)
    structured: bool = True

    def params(self, schema: dict[str, Any] | None, sample: int) -> GenerationParams:
        return GenerationParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                seed=self.seed + sample, json_schema=schema if self.structured else None,
                                json_schema_name="judgement")


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
                        stats: CallStats) -> str:
        key = cache_key(model_id(model), params.to_dict(), self.rubric.version, messages)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                stats.cached += 1
                stats.prompt_tokens += hit.prompt_tokens
                stats.completion_tokens += hit.completion_tokens
                return hit.text
        async with self.sem:
            comp = await model.agenerate(messages, params)
        stats.calls += 1
        stats.retries += max(0, comp.attempts - 1)
        stats.prompt_tokens += comp.usage.prompt_tokens
        stats.completion_tokens += comp.usage.completion_tokens
        if self.cache is not None:
            self.cache.put(key, model_id(model), self.rubric.version,
                           CachedAnswer(comp.text, comp.model, comp.usage.prompt_tokens, comp.usage.completion_tokens))
        return comp.text

    async def ask(self, model: ChatModel, messages: list[Message], params: GenerationParams,
                  keys: list[str], parse: Callable[[str], dict[str, Any]]) -> Answered:
        out = Answered({})
        pending = list(keys)
        msgs = messages
        last_error: dict[str, str] = {}
        for attempt in range(self.config.max_reasks + 1):
            try:
                text = await self._complete(model, msgs, params, out.stats)
            except Exception as e:  # ModelError after the model layer's own retries, or anything else
                out.stats.transport_failures += 1
                for k in pending:
                    out.errors[k] = {"kind": "transport", "message": f"{type(e).__name__}: {e}"[:500],
                                     "attempts": attempt + 1}
                return out
            readings = parse(text)
            still: list[str] = []
            for k in pending:
                r: _Readable = readings[k]
                if r.ok:
                    out.readings[k] = r
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


def judge_fingerprint(info: dict[str, Any]) -> str:
    """What must match for rows of an earlier run to count as done (addresses and timings excluded)."""
    keep = {k: info[k] for k in ("models", "rubric_version", "prompt_version", "lang", "mode", "samples",
                                  "aggregate", "params", "max_reasks", "exchanges", "structured") if k in info}
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
            "kyokan_version": __version__,
        }
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
                       rationales=dict.fromkeys(metrics), format_reason=why, **base,
                       judge=self.info, usage=CallStats().to_dict())
            return row
        asker = self._asker()
        jobs: list[Awaitable[tuple[str, Answered]]] = []

        async def tagged(jm: str, aw: Awaitable[Answered]) -> tuple[str, Answered]:
            return jm, await aw

        lo, hi = rub.scale_min, rub.scale_max
        for model in self.models:
            for s in range(c.samples):
                if c.all_in_one:
                    msgs = all_in_one_messages(record, rub, c.lang)
                    p = c.params(all_in_one_schema(rub), s)
                    jobs.append(tagged(model_id(model), asker.ask(
                        model, msgs, p, metrics, partial(parse_scores, metric_ids=metrics, lo=lo, hi=hi))))
                else:
                    for m in metrics:
                        msgs = per_metric_messages(record, rub, m, c.lang)
                        p = c.params(score_schema(rub), s)
                        jobs.append(tagged(model_id(model), asker.ask(
                            model, msgs, p, [m], partial(_one_score, metric=m, lo=lo, hi=hi))))
        results = await asyncio.gather(*jobs)
        stats = CallStats()
        #: judge -> metric -> list over samples of (score|None, rationale|None, error|None)
        votes: dict[str, dict[str, list[tuple[int | None, str | None, dict[str, Any] | None]]]] = {}
        for jm, ans in results:
            stats.add(ans.stats)
            per = votes.setdefault(jm, {m: [] for m in metrics})
            for m in metrics:
                if m in ans.readings:
                    r: Parsed = ans.readings[m]
                    per[m].append((r.score, r.rationale, None))
                elif m in ans.errors:
                    per[m].append((None, None, ans.errors[m]))
        scores: dict[str, float | int | None] = {}
        rationales: dict[str, str | None] = {}
        errors: dict[str, dict[str, Any]] = {}
        missing_votes = 0
        for m in metrics:
            vals = [v[0] for jm in votes for v in votes[jm][m] if v[0] is not None]
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
        row.update(scores=scores, rationales=rationales)
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
