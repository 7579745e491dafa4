"""`kyokan generate INPUT --model SPEC -o OUT`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kyokan.console import err, out, print_json


def generate_cmd(
    input: Path = typer.Argument(..., help="Dialogue records (kyokan JSONL/CSV/Parquet, ED CSV, ...)."),
    model: str = typer.Option(..., "--model", "-m", help="Model spec: smollm2-135m, gemma3-270m, hf:PATH, openai:MODEL, vllm:ID."),
    output: Path = typer.Option(..., "-o", "--output", help="Output JSONL (appended as rows finish; reruns resume)."),
    task: str = typer.Option("dialogue", "--task", help="dialogue (EmplifAI: emotion + situation → dialogue) or response (EmPO: dialogue → next listener reply)."),
    lang: str = typer.Option(None, "--lang", help="Prompt language ja|en (default: each record's lang)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for openai: specs (e.g. http://localhost:8000/v1)."),
    adapter: str = typer.Option(None, "--adapter", help="LoRA adapter folder on top of a local model."),
    exchanges: int = typer.Option(2, "--exchanges", help="Dialogue task: speaker→listener exchanges to write."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Generation limit (default: dialogue 512, response 256; with --length-control 256 / 64)."),
    length_control: bool = typer.Option(False, "--length-control", help="EmPO's length-controlled baseline: a 'keep it short' instruction (and a lower default limit)."),
    target_length: int = typer.Option(None, "--target-length", help="Length-control target: characters (ja) or words (en); default 60 / 15."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass."),
    seed: int = typer.Option(0, "--seed", help="Run seed; each row gets its own seed derived from it (recorded)."),
    samples: int = typer.Option(1, "--samples", help="Generations per input (ids get ~0, ~1, ...)."),
    style: str = typer.Option("chat", "--style", help="Response task: chat (turns as chat messages, EmPO) or transcript (one user message)."),
    turn: str = typer.Option("last", "--turn", help="Response task: last listener turn, or all (one row per listener turn, ids ID@i)."),
    template: Path = typer.Option(None, "--template", help="TOML/JSON prompt template overriding the built-in one (see docs/generate.md)."),
    concurrency: int = typer.Option(8, "--concurrency", "-j", min=1, help="HTTP requests in flight (openai:)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Local models: rows per generate() call."),
    threads: int = typer.Option(None, "--threads", help="Local models: torch CPU threads (1 is often fastest on a busy small machine)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds per HTTP request."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries per HTTP request (429/5xx/timeouts)."),
    limit: int = typer.Option(None, "--limit", help="Only the first N rows (a quick try)."),
    fmt: str = typer.Option(None, "--format", "-f", help="Input layout (default: from the path)."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help="Taxonomy of the input labels."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again instead of resuming."),
    json_: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Generate format-checked dialogues (or listener responses) with any model; rows carry
    meta.generation (raw output, format_ok, reason, model, params, seed). A rerun after a kill or
    failures appends only the missing rows.

    Example: kyokan generate sample_ja.jsonl --model smollm2-135m --limit 4 -o gen.jsonl
    Example: kyokan generate pairs.jsonl --model openai:gpt-4o-mini --concurrency 16 -o gen.jsonl
    Example: kyokan generate ed.csv --task response --length-control --model hf:./sft -o resp.jsonl
    """
    from kyokan.console import RowProgress
    from kyokan.data.api import read_records
    from kyokan.generate.runner import GenerateConfig, generate_file
    from kyokan.models import load_model
    from kyokan.quiet import quiet_loaded

    if lang is not None and lang not in ("ja", "en"):
        from kyokan.errors import KyokanError

        raise KyokanError(f"--lang must be ja or en, got {lang!r}")
    cfg = GenerateConfig(task=task, lang=lang, exchanges=exchanges, max_new_tokens=max_new_tokens,
                         temperature=temperature, top_p=top_p, seed=seed, samples=samples,
                         length_control=length_control, target_length=target_length, style=style, turn=turn,
                         template_file=str(template) if template else None, taxonomy=taxonomy)
    records = list(read_records(input, fmt=fmt, taxonomy=taxonomy))  # validates before any model call
    quiet_loaded()
    kw: dict[str, Any] = {}
    if not (model.startswith("openai:")):
        kw["batch_size"] = batch_size
        if threads is not None:
            kw["threads"] = threads
    with err.status(f"loading {model}…"):
        chat_model = load_model(model, base_url=base_url, adapter=adapter, concurrency=concurrency,
                                timeout=timeout, max_retries=max_retries, **kw)
    in_flight = max(concurrency, 2 * int(getattr(chat_model, "batch_size", 1)))

    progress = RowProgress("generate", disable=json_)
    state: dict[str, Any] = {"ok": 0, "bad": 0, "failed": 0, "decode": ""}

    def status() -> str:
        return f"format ok {state['ok']} · broken {state['bad']} · failed {state['failed']}{state['decode']}"

    def on_decode(step: int, max_new: int, ended: int, rows: int) -> None:
        # a local model returns a whole batch at once: show its rows finishing meanwhile
        state["decode"] = f" · batch: {ended}/{rows} rows done, token {step}/{max_new}"
        progress.advance(0, status())  # a status refresh; plain-text output stays at one line per 10 s

    def on_start(total: int, todo: int) -> None:
        if total > todo:
            err.print(f"resuming: {total - todo} of {total} rows already in {output}", markup=False)
        progress.start(todo)

    def on_row(row: dict[str, Any] | None, e: BaseException | None) -> None:
        state["decode"] = ""
        if row is not None:
            state["ok" if row["meta"]["generation"]["format_ok"] else "bad"] += 1
        else:
            state["failed"] += 1
        progress.advance(1, status())

    if hasattr(chat_model, "on_decode") and not json_:
        chat_model.on_decode = on_decode
    with progress:
        summary = generate_file(records, chat_model, output, cfg, in_flight=in_flight, overwrite=overwrite,
                                limit=limit, on_start=on_start, on_row=on_row)
    result = summary.to_dict()
    result["model"] = chat_model.info()
    result["config"] = cfg.to_dict()
    if json_:
        print_json(result)
    else:
        out.print(f"{summary.written} rows written to {output} ({summary.format_ok} format ok, "
                  f"{summary.format_bad} broken; {summary.skipped} already there) in {summary.seconds:.1f} s; "
                  f"tokens in/out {summary.usage['prompt_tokens']}/{summary.usage['completion_tokens']}", markup=False)
    if summary.failed:
        for f in summary.failed[:5]:
            err.print(f"failed {f['id']}: {f['error']}", markup=False)
        err.print(f"{len(summary.failed)} row(s) failed after retries and were not written; rerun the same "
                  "command to generate only those", markup=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
