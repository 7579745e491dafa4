"""Pairwise comparison with both presentation orders, to cancel position bias.

Each pair (dialogue ``a`` from one system, ``b`` from another, matched by a key such as
``situation_id``) is judged twice per metric: a shown first, then b shown first. A side wins only
when both orders agree (the conservative rule of Zheng et al. 2023); any disagreement is a tie and
is counted as position-inconsistent. A side that broke the format loses without a call (both
broken: a tie). Rows::

    {"id", "a_id", "b_id", "status", "winners": {metric: "a"|"b"|"tie"|null},
     "orders": {metric: {"ab": .., "ba": ..}}, "position_consistent": {metric: bool|null}, ...}
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, Problem
from kyokan.io import JsonlAppender, write_json
from kyokan.judge.cache import AnswerCache
from kyokan.judge.engine import (
    Answered,
    CallStats,
    Judge,
    JudgeConfig,
    judge_fingerprint,
    probe_models,
    source_model,
)
from kyokan.judge.formatrule import format_violation
from kyokan.judge.parse import ParsedWinner, parse_winner, parse_winners
from kyokan.judge.prompts import pairwise_all_schema, pairwise_messages, winner_schema
from kyokan.judge.rubric import Rubric
from kyokan.judge.runner import prepare_output, read_input, read_rows, summary_path_for
from kyokan.models.base import ChatModel

_MAP = {"ab": {"A": "a", "B": "b", "tie": "tie"}, "ba": {"A": "b", "B": "a", "tie": "tie"}}


class PairwiseJudge(Judge):
    """One judge model; ``ajudge`` takes ``{"id": key, "a": record, "b": record}``."""

    def __init__(self, model: ChatModel, rubric: Rubric, config: JudgeConfig | None = None,
                 cache: AnswerCache | None = None) -> None:
        super().__init__([model], rubric, config, cache)
        self.info["mode"] = "pairwise_all_in_one" if self.config.all_in_one else "pairwise"
        self.info["pairing"] = "both orders; a win needs both orders to agree, else tie"
        self.info.pop("fingerprint", None)
        self.info["fingerprint"] = judge_fingerprint(self.info)

    async def ajudge(self, item: dict[str, Any]) -> dict[str, Any]:
        a, b = item["a"], item["b"]
        rub, c, model = self.rubric, self.config, self.models[0]
        metrics = rub.metric_ids
        row: dict[str, Any] = {"id": str(item["id"]), "a_id": a.get("id"), "b_id": b.get("id"),
                               "a_source": source_model(a), "b_source": source_model(b), "status": "ok"}
        va, vb = format_violation(a, c.exchanges), format_violation(b, c.exchanges)
        if va or vb:
            w = "tie" if (va and vb) else ("b" if va else "a")
            row.update(status="format_violation", winners=dict.fromkeys(metrics, w),
                       format_reason={k: v for k, v in (("a", va), ("b", vb)) if v},
                       judge=self.info, usage=CallStats().to_dict())
            return row
        asker = self._asker()

        async def tagged(order: str, aw: Awaitable[Answered]) -> tuple[str, Answered]:
            return order, await aw

        jobs = []
        # a grammar-constrained judge must finish within max_new_tokens: bound the rationale
        grammar = bool(model.capabilities().get("grammar"))
        budget = c.rationale_budget(len(metrics) if c.all_in_one else 1) if grammar else None
        for order, (x, y) in (("ab", (a, b)), ("ba", (b, a))):
            if c.all_in_one:
                msgs = pairwise_messages(x, y, rub, metrics, c.lang)
                jobs.append(tagged(order, asker.ask(model, msgs, c.params(pairwise_all_schema(metrics, budget), 0),
                                                    metrics, partial(parse_winners, metric_ids=metrics))))
            else:
                for m in metrics:
                    msgs = pairwise_messages(x, y, rub, [m], c.lang)
                    jobs.append(tagged(order, asker.ask(model, msgs, c.params(winner_schema(budget), 0), [m],
                                                        partial(_one_winner, metric=m))))
        results = await asyncio.gather(*jobs)
        stats = CallStats()
        orders: dict[str, dict[str, str | None]] = {m: {"ab": None, "ba": None} for m in metrics}
        errors: dict[str, dict[str, Any]] = {}
        for order, ans in results:
            stats.add(ans.stats)
            for m, r in ans.readings.items():
                pw: ParsedWinner = r
                orders[m][order] = _MAP[order][pw.winner or ""]
            for m, e in ans.errors.items():
                errors.setdefault(m, {**e, "order": order})
        winners: dict[str, str | None] = {}
        consistent: dict[str, bool | None] = {}
        for m in metrics:
            w1, w2 = orders[m]["ab"], orders[m]["ba"]
            if w1 is None or w2 is None:
                winners[m], consistent[m] = None, None
            else:
                winners[m] = w1 if w1 == w2 else "tie"
                consistent[m] = w1 == w2
        scored = sum(1 for m in metrics if winners[m] is not None)
        row["status"] = "unscored" if scored == 0 else ("partial" if scored < len(metrics) else "ok")
        row.update(winners=winners, orders=orders, position_consistent=consistent)
        if errors:
            row["errors"] = errors
        row.update(judge=self.info, usage=stats.to_dict())
        return row


def _one_winner(text: str, metric: str) -> dict[str, Any]:
    return {metric: parse_winner(text)}


def pair_up(a_recs: list[dict[str, Any]], b_recs: list[dict[str, Any]], key: str,
            a_path: str = "A", b_path: str = "B") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Pairs ``{"id", "a", "b"}`` matched on ``key`` (a field of the records, e.g. ``situation_id``);
    a key repeated within one file is an input error (the match would be ambiguous)."""

    def index(recs: list[dict[str, Any]], path: str) -> dict[str, dict[str, Any]]:
        idx: dict[str, dict[str, Any]] = {}
        probs = []
        for r in recs:
            k = r.get(key)
            if not isinstance(k, str) or not k:
                probs.append(Problem(path, None, key, f"record {r.get('id')!r} has no {key}"))
            elif k in idx:
                probs.append(Problem(path, None, key, f"{k!r} appears more than once (records {idx[k].get('id')!r} "
                                                      f"and {r.get('id')!r}); pair on another field with --pair-key"))
            else:
                idx[k] = r
        if probs:
            raise InputError(probs[:50], len(probs))
        return idx

    ia, ib = index(a_recs, a_path), index(b_recs, b_path)
    keys = [k for k in ia if k in ib]
    pairs = [{"id": k, "a": ia[k], "b": ib[k]} for k in keys]
    return pairs, {"paired": len(pairs), "only_a": len(ia) - len(keys), "only_b": len(ib) - len(keys)}


def summarize_pairwise(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    """Per metric: wins of a and b, ties, unscored, a's win rate (ties count half, over scored
    pairs) and the share of judged pairs whose two orders agreed."""
    table = {}
    for m in metrics:
        c: Counter[str] = Counter()
        judged = consistent = 0
        for r in rows:
            w = (r.get("winners") or {}).get(m)
            c[w if w is not None else "unscored"] += 1
            pc = (r.get("position_consistent") or {}).get(m)
            if pc is not None:
                judged += 1
                consistent += bool(pc)
        scored = c["a"] + c["b"] + c["tie"]
        table[m] = {"a": c["a"], "b": c["b"], "tie": c["tie"], "unscored": c["unscored"],
                    "a_win_rate": round((c["a"] + 0.5 * c["tie"]) / scored, 4) if scored else None,
                    "position_consistency": round(consistent / judged, 4) if judged else None,
                    "n_judged": judged}
    sources = {"a": sorted({str(r.get("a_source")) for r in rows}), "b": sorted({str(r.get("b_source")) for r in rows})}
    return {"n_pairs": len(rows), "metrics": metrics, "sources": sources,
            "status_counts": dict(Counter(r.get("status") for r in rows)), "table": table}


async def ajudge_pairs_file(a_path: str | Path, b_path: str | Path, out: str | Path, model: ChatModel,
                            rubric: Rubric, config: JudgeConfig | None = None, *, key: str = "id",
                            cache_path: str | Path | None = None, retry_failed: bool = True,
                            overwrite: bool = False,
                            on_row: Callable[[dict[str, Any]], None] | None = None,
                            on_start: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Judge every matched pair; rows appended as pairs finish; summary beside ``out``."""
    t0 = time.perf_counter()
    out = Path(out)
    pairs, counts = pair_up(read_input(a_path), read_input(b_path), key, str(a_path), str(b_path))
    cache = AnswerCache(cache_path) if cache_path else None
    await probe_models([model])
    judge = PairwiseJudge(model, rubric, config, cache)
    written = 0
    try:
        done, retried = prepare_output(out, judge.info["fingerprint"], retry_failed=retry_failed, overwrite=overwrite)
        todo = [p for p in pairs if p["id"] not in done]
        if on_start is not None:
            on_start(len(todo), len(pairs) - len(todo))
        with JsonlAppender(out) as app:
            async for row in judge.astream(todo):
                app.write(row)
                written += 1
                if on_row is not None:
                    on_row(row)
    finally:
        await judge.aclose()
        if cache is not None:
            cache.close()
    ids = {p["id"] for p in pairs}
    rows = [r for r in read_rows(out) if r["id"] in ids]
    summary = summarize_pairwise(rows, rubric.metric_ids)
    summary["provenance"] = {"a": str(a_path), "b": str(b_path), "pair_key": key, **counts,
                             "output": str(out), "judge": judge.info, "rubric": rubric.info(),
                             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             "this_run": {"written": written, "skipped_finished": len(pairs) - len(todo),
                                          "retried_unfinished": retried,
                                          "seconds": round(time.perf_counter() - t0, 3)}}
    write_json(summary_path_for(out), summary)
    return summary


def judge_pairs_file(*args: Any, **kw: Any) -> dict[str, Any]:
    return asyncio.run(ajudge_pairs_file(*args, **kw))


__all__: Sequence[str] = ("PairwiseJudge", "ajudge_pairs_file", "judge_pairs_file", "pair_up", "summarize_pairwise")
