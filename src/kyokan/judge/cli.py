"""`kyokan judge`: LLM-as-a-judge on a rubric (EmplifAI's seven metrics by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kyokan.console import err, out, print_json, print_text
from kyokan.errors import KyokanError

_KNOWN_PREFIXES = ("openai", "hf", "vllm", "packaged")


def resolve_spec(name: str, base_url: str | None) -> str:
    """``--model gpt-4o-mini --base-url URL`` means ``openai:gpt-4o-mini``; specs with a backend
    prefix (``openai:``, ``hf:``, ``vllm:``) and packaged model names are used as given."""
    from kyokan.models.packaged import PACKAGED

    if name in PACKAGED:
        return name
    prefix, sep, _ = name.partition(":")
    if sep and prefix in _KNOWN_PREFIXES:
        return name
    if base_url:
        return f"openai:{name}"
    return name


def judge_cmd(
    input: Path = typer.Argument(..., help="Dialogue records (kyokan JSONL/CSV/Parquet), e.g. from `kyokan generate`."),
    output: Path = typer.Option(..., "-o", "--output", help="Rows, one per dialogue (JSONL); the summary goes to OUT.summary.json."),
    model: list[str] = typer.Option(..., "--model", "-m", help="Judge model (repeat for several judges): a name served at --base-url, openai:NAME, hf:PATH or a packaged model."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
    cache: Path = typer.Option(None, "--cache", help="SQLite answer cache (default: OUT.cache.sqlite beside the output)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not cache answers (a killed run then repeats its calls)."),
    concurrency: int = typer.Option(8, "--concurrency", "-j", min=1, help="Judge calls in flight at once."),
    all_in_one: bool = typer.Option(False, "--all-in-one", help="One call scoring every metric (default: one call per metric, as the paper)."),
    rubric: str = typer.Option("emplifai7", "--rubric", help="Rubric name or JSON file (see docs/judge.md)."),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated subset of the rubric's metric ids."),
    lang: str = typer.Option("ja", "--lang", help="Language of the rubric and prompts: ja or en."),
    samples: int = typer.Option(1, "--samples", min=1, help="Repeated samples per judge (seeds seed..seed+k-1)."),
    aggregate: str = typer.Option("mean", "--aggregate", help="How several judges/samples combine: mean or median."),
    seed: int = typer.Option(0, "--seed", help="Seed sent to the judge (where supported) and recorded."),
    temperature: float = typer.Option(0.0, "--temperature", help="Judge sampling temperature (0 = greedy)."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Answer length limit."),
    max_reasks: int = typer.Option(2, "--max-reasks", min=0, help="Re-asks after an unparseable answer before the metric is left unscored."),
    exchanges: int = typer.Option(2, "--exchanges", min=0, help="Expected speaker/listener exchanges (0 = any); others are format violations."),
    structured: bool = typer.Option(True, "--structured/--no-structured", help="Local judges decode under the answer's JSON schema; HTTP judges are sent it as response_format (turn off for endpoints that reject it)."),
    probabilities: bool = typer.Option(True, "--probabilities/--no-probabilities", help="Probability-weighted (G-Eval) expected scores where the backend returns log-probs."),
    top_logprobs: int = typer.Option(10, "--top-logprobs", min=1, max=20, help="Alternatives per token asked for with --probabilities."),
    rationale: bool = typer.Option(True, "--rationale/--no-rationale", help="Ask for a rationale before each score (off: scores only)."),
    rationale_chars: int = typer.Option(None, "--rationale-chars", min=0, help="Longest rationale a grammar-constrained (local) judge may write (default: what fits in --max-new-tokens)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Local judges: prompts decoded together."),
    threads: int = typer.Option(None, "--threads", min=1, help="Local judges: torch CPU threads (1 is often fastest on a busy small machine)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per HTTP request."),
    max_retries: int = typer.Option(5, "--max-retries", min=0, help="Retries on 429/5xx/timeouts (with backoff) before a call fails."),
    against: Path = typer.Option(None, "--against", help="Pairwise mode: compare INPUT (a) with these dialogues (b), both orders."),
    pair_key: str = typer.Option("id", "--pair-key", help="Pairwise mode: the record field that matches a with b (e.g. situation_id)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start OUT afresh (the cache is kept)."),
    retry_unfinished: bool = typer.Option(True, "--retry-unfinished/--keep-unfinished", help="Judge unscored/partial rows of an earlier run again (answered calls come from the cache)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any dialogue is left unscored or partial."),
    json_: bool = typer.Option(False, "--json", help="Print the summary JSON on stdout."),
) -> None:
    """Score dialogues with an LLM judge on a rubric: format violations get the lowest score without
    a call, unreadable answers are re-asked and then left unscored (never scored 1), answers are
    cached, rows are appended as dialogues finish, and a killed run resumes where it stopped.

    Example: kyokan judge generated.jsonl -o judged.jsonl --model gemini-2.5-flash --base-url https://generativelanguage.googleapis.com/v1beta/openai --concurrency 16
    Example: kyokan judge generated.jsonl -o judged.jsonl --model qwen --base-url http://localhost:8000/v1 --all-in-one --lang en
    Example: kyokan judge sft.jsonl --against base.jsonl --pair-key situation_id -o pairs.jsonl --model qwen --base-url http://localhost:8000/v1
    Example: kyokan judge generated.jsonl -o judged.jsonl --model smollm2-135m --all-in-one --lang en
    """
    from kyokan.console import RowProgress
    from kyokan.judge.engine import AGGREGATES, JudgeConfig
    from kyokan.judge.rubric import get_rubric
    from kyokan.judge.runner import cache_path_for, summary_path_for
    from kyokan.judge.summary import table4_markdown
    from kyokan.models import load_model

    if lang not in ("ja", "en"):
        raise KyokanError(f"--lang must be ja or en, got {lang!r}")
    if aggregate not in AGGREGATES:
        raise KyokanError(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    if against is not None and len(model) > 1:
        raise KyokanError("pairwise mode (--against) takes one --model")
    if output.resolve() == input.resolve():
        raise KyokanError("-o must not be the input file")
    rub = get_rubric(rubric)
    if metrics:
        rub = rub.select([m.strip() for m in metrics.split(",") if m.strip()])
    config = JudgeConfig(lang=lang, all_in_one=all_in_one, samples=samples, aggregate=aggregate, seed=seed,
                         temperature=temperature, max_new_tokens=max_new_tokens, max_reasks=max_reasks,
                         exchanges=exchanges, concurrency=concurrency, structured=structured,
                         probabilities=probabilities, top_logprobs=top_logprobs, rationale=rationale,
                         rationale_chars=rationale_chars)
    cache_path = None if no_cache else (cache or cache_path_for(output))
    specs = [resolve_spec(m, base_url) for m in model]
    models = [load_model(sp, base_url=base_url, concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                         **_local_options(sp, batch_size, threads)) for sp in specs]
    unfinished = 0

    with RowProgress("judge", unit="dialogues", disable=json_) as prog:

        def on_start(todo: int, skipped: int) -> None:
            prog.start(todo, f"{skipped} already done" if skipped else "")

        def on_row(row: dict[str, Any]) -> None:
            nonlocal unfinished
            if row.get("status") in ("unscored", "partial"):
                unfinished += 1
            prog.advance(1, f"unscored/partial {unfinished}" if unfinished else "")

        if against is not None:
            from kyokan.judge.pairwise import judge_pairs_file

            summary = judge_pairs_file(input, against, output, models[0], rub, config, key=pair_key,
                                       cache_path=cache_path, retry_failed=retry_unfinished, overwrite=overwrite,
                                       on_row=on_row, on_start=on_start)
        else:
            from kyokan.judge.runner import judge_file

            res = judge_file(input, output, models, rub, config, cache_path=cache_path,
                             retry_failed=retry_unfinished, overwrite=overwrite, on_row=on_row, on_start=on_start,
                             provenance={"command": "kyokan judge"})
            summary = res.summary
    spath = summary_path_for(output)
    if json_:
        print_json(summary)
    elif against is not None:
        _print_pairwise(summary)
    else:
        names = {m.id: m.text("name", lang, "日本語" if lang == "ja" else "Japanese") for m in rub.metrics}
        print_text(table4_markdown(summary, names))
        run = summary["provenance"]["this_run"]
        calls = run["calls"]
        out.print(f"{run['written']} rows written ({run['skipped_finished']} already done); "
                  f"{calls['calls']} judge calls, {calls['cached']} from cache, {calls['retries']} HTTP retries, "
                  f"{calls['reasks']} re-asks; statuses: {_statuses(summary)}", markup=False)
        out.print(f"rows: {output}\nsummary: {spath}", markup=False)
    for w in summary.get("warnings") or []:
        err.print(f"warning: {w}", markup=False)
    if unfinished or _has_unfinished(summary):
        err.print(f"warning: some dialogues are unscored or partial (see 'errors' in {output}); rerun the same "
                  "command to retry them", markup=False)
        if strict:
            raise typer.Exit(1)


def _local_options(spec: str, batch_size: int, threads: int | None) -> dict[str, Any]:
    """``batch_size``/``threads`` for local backends (hf:, packaged); HTTP backends take neither."""
    from kyokan.models.registry import parse_spec

    prefix, _ = parse_spec(spec)
    if prefix not in ("hf", "packaged"):
        return {}
    kw: dict[str, Any] = {"batch_size": batch_size}
    if threads is not None:
        kw["threads"] = threads
    return kw


def _statuses(summary: dict[str, Any]) -> str:
    from collections import Counter

    c: Counter[str] = Counter()
    for counts in summary.get("status_counts", {}).values():
        if isinstance(counts, dict):
            c.update(counts)
        else:
            return ", ".join(f"{k} {v}" for k, v in summary["status_counts"].items())
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))


def _has_unfinished(summary: dict[str, Any]) -> bool:
    sc = summary.get("status_counts", {})
    vals = [v for d in sc.values() if isinstance(d, dict) for v in [d]] or [sc]
    return any(d.get("unscored") or d.get("partial") for d in vals)


def _print_pairwise(summary: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"pairwise: a={', '.join(summary['sources']['a'])} vs b={', '.join(summary['sources']['b'])} "
                    f"({summary['n_pairs']} pairs)")
    for col in ("metric", "a", "b", "tie", "unscored", "a win rate", "position consistency"):
        t.add_column(col)
    from kyokan.tables import fmt_num

    why = []
    for m, c in summary["table"].items():
        t.add_row(m, str(c["a"]), str(c["b"]), str(c["tie"]), str(c["unscored"]), fmt_num(c["a_win_rate"], 4),
                  fmt_num(c["position_consistency"], 4))
        if c["a_win_rate"] is None:
            why.append(f"{m}: a win rate – because no pair has a score (all {c['unscored']} unscored)")
        if c["position_consistency"] is None:
            why.append(f"{m}: position consistency – because no pair was judged in both orders")
    out.print(t)
    for w in why:
        out.print(w, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("judge")(judge_cmd)
