"""Judging a file: read the dialogues, skip the ones an earlier (possibly killed) run finished,
judge the rest concurrently, append each row as its dialogue finishes, then write the summary
beside the output (``OUT.jsonl`` → ``OUT.summary.json``).

Resuming: rows already in OUT with status ``ok`` or ``format_violation`` are kept and not judged
again; rows with ``unscored``/``partial`` are dropped (the file is rewritten atomically) and judged
again — their answered calls come from the cache, so only the failed calls are repeated. Rows
written with other judge settings (a different fingerprint) stop the run with an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, KyokanError, Problem
from kyokan.io import JsonlAppender, repair_torn_tail, write_json, write_jsonl
from kyokan.judge.cache import AnswerCache
from kyokan.judge.engine import CallStats, Judge, JudgeConfig, probe_models
from kyokan.judge.rubric import Rubric
from kyokan.judge.summary import summarize
from kyokan.models.base import ChatModel

FINISHED = ("ok", "format_violation")


def summary_path_for(out: str | Path) -> Path:
    """``judged.jsonl`` → ``judged.summary.json`` (beside the rows; :func:`kyokan.io.sidecar`)."""
    from kyokan.io import sidecar

    return sidecar(out, "summary")


def cache_path_for(out: str | Path) -> Path:
    """``judged.jsonl`` → ``judged.cache.sqlite`` (the default answer cache of a run)."""
    from kyokan.io import sidecar

    return sidecar(out, "cache", ".sqlite")


def read_input(path: str | Path, fmt: str | None = None) -> list[dict[str, Any]]:
    """Dialogue records, read leniently: a record needs an object with a unique string ``id``;
    broken turns are not an input error here but a format violation (scored 1, no judge call)."""
    from kyokan.data.readers import read_raw

    recs: list[dict[str, Any]] = []
    probs: list[Problem] = []
    first: dict[str, int] = {}
    for r in read_raw(path, fmt):
        if r.error is not None:
            probs.append(r.error)
            continue
        d = r.data
        if not isinstance(d, dict):
            probs.append(Problem(r.path, r.line, None, "expected a JSON object (a dialogue record)"))
            continue
        rid = d.get("id")
        if not isinstance(rid, str) or not rid.strip():
            probs.append(Problem(r.path, r.line, "id", "missing or not a non-empty string"))
            continue
        if rid in first:
            probs.append(Problem(r.path, r.line, "id", f"duplicate id {rid!r} (first at line {first[rid]})"))
            continue
        first[rid] = r.line
        recs.append(d)
    if probs:
        raise InputError(probs[:50], len(probs))
    return recs


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    from kyokan.io import read_rows as _read

    return _read(path)


def prepare_output(out: Path, fingerprint: str, *, retry_failed: bool = True,
                   overwrite: bool = False) -> tuple[set[str], int]:
    """Ids already finished in ``out`` (kept), and how many unfinished rows were dropped to be
    judged again."""
    if overwrite and out.exists():
        out.unlink()
    if not out.exists():
        return set(), 0
    repair_torn_tail(out)
    rows = read_rows(out)
    other = {str((r.get("judge") or {}).get("fingerprint")) for r in rows} - {fingerprint}
    if other:
        raise KyokanError(f"{out} holds rows judged with other settings (judge fingerprint {sorted(other)[0]}, "
                          f"this run {fingerprint}); write to a new -o file, or pass --overwrite")
    keep = [r for r in rows if not retry_failed or r.get("status") in FINISHED]
    dropped = len(rows) - len(keep)
    if dropped:
        write_jsonl(out, keep)
    return {str(r["id"]) for r in keep}, dropped


@dataclass
class RunResult:
    out: Path
    summary_path: Path
    #: rows written by this run
    written: int
    #: dialogues an earlier run had finished
    skipped: int
    #: unfinished rows of an earlier run that were judged again
    retried: int
    stats: CallStats = field(default_factory=CallStats)
    summary: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0


async def ajudge_file(input_path: str | Path, out: str | Path, models: Sequence[ChatModel], rubric: Rubric,
                      config: JudgeConfig | None = None, *, cache_path: str | Path | None = None,
                      retry_failed: bool = True, overwrite: bool = False, input_format: str | None = None,
                      on_row: Callable[[dict[str, Any]], None] | None = None,
                      on_start: Callable[[int, int], None] | None = None,
                      provenance: dict[str, Any] | None = None) -> RunResult:
    t0 = time.perf_counter()
    out = Path(out)
    records = read_input(input_path, input_format)
    cache = AnswerCache(cache_path) if cache_path else None
    await probe_models(models)
    judge = Judge(models, rubric, config, cache)
    try:
        done, retried = prepare_output(out, judge.info["fingerprint"], retry_failed=retry_failed,
                                       overwrite=overwrite)
        todo = [r for r in records if str(r["id"]) not in done]
        if on_start is not None:
            on_start(len(todo), len(records) - len(todo))
        stats = CallStats()
        written = 0
        from kyokan.records import JudgedRow

        with JsonlAppender(out) as app:
            async for row in judge.astream(todo):
                JudgedRow.model_validate(row)  # the writer holds itself to the record it promises
                app.write(row)
                written += 1
                for k, v in row["usage"].items():
                    if k in stats.__dataclass_fields__:
                        setattr(stats, k, getattr(stats, k) + v)
                if on_row is not None:
                    on_row(row)
    finally:
        await judge.aclose()
        if cache is not None:
            cache.close()
    ids = {str(r["id"]) for r in records}
    rows = [r for r in read_rows(out) if str(r["id"]) in ids]
    summary = summarize(rows, rubric.metric_ids)
    summary["provenance"] = {
        "input": str(input_path), "output": str(out), "n_input": len(records),
        "judge": judge.info, "rubric": rubric.info(),
        "models": [_safe_info(m) for m in models],
        "cache": str(cache_path) if cache_path else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "this_run": {"written": written, "skipped_finished": len(records) - len(todo), "retried_unfinished": retried,
                     "calls": stats.to_dict(), "seconds": round(time.perf_counter() - t0, 3)},
        **(provenance or {}),
    }
    spath = summary_path_for(out)
    write_json(spath, summary)
    return RunResult(out, spath, written, len(records) - len(todo), retried, stats, summary,
                     time.perf_counter() - t0)


def _safe_info(m: ChatModel) -> dict[str, Any]:
    try:
        info = dict(m.info())
    except Exception as e:  # provenance must not break a finished run
        return {"spec": m.spec, "error": str(e)}
    info.pop("api_key", None)
    return info


def judge_file(*args: Any, **kw: Any) -> RunResult:
    """Synchronous :func:`ajudge_file`."""
    return asyncio.run(ajudge_file(*args, **kw))
