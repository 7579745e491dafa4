"""`kyokan prefs build|check`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from kyokan.console import err, out, print_json
from kyokan.errors import InputError, KyokanError

prefs_app = typer.Typer(help="EmPO preference pairs (chosen: own reply; rejected: opposite emotion), redrawn per epoch.",
                        no_args_is_help=True)

FMT_HELP = "Input layout: jsonl, csv, parquet, ed, kokorochat, hf. Default: from the path."


@prefs_app.command("build")
def build_cmd(
    data: Path = typer.Argument(..., help="Dialogue file or folder (any layout `kyokan data` reads)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder: epoch-K.jsonl files and report.json."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help="Taxonomy name or JSON path (default: goemotions28; ed32 for ED CSVs)."),
    epochs: int = typer.Option(3, "--epochs", "-k", min=1, help="Number of epochs (one fresh draw each)."),
    seed: int = typer.Option(0, "--seed", help="Seed; epoch K's draw depends only on (seed, K)."),
    strategy: str = typer.Option("opposite", "--strategy", help="opposite (EmPO) | same-situation (hard negatives) | model (generated)."),
    system: str = typer.Option(None, "--system", help="A system message put first in every prompt."),
    fmt: str = typer.Option(None, "--format", "-f", help=FMT_HELP),
    epoch: list[int] = typer.Option(None, "--epoch", help="Build only this epoch (repeatable); same bytes as in a full build."),
    no_fallback: bool = typer.Option(False, "--no-fallback", help="same-situation: leave unpaired the dialogues whose situation has no other emotion."),
    model: str = typer.Option(None, "--model", help="--strategy model: model spec (openai:<id>, hf:<path>, smollm2-135m, ...)."),
    base_url: str = typer.Option(None, "--base-url", help="--strategy model: OpenAI-compatible endpoint."),
    temperature: float = typer.Option(0.8, "--temperature", help="--strategy model: sampling temperature (seeded per dialogue and epoch)."),
    max_new_tokens: int = typer.Option(96, "--max-new-tokens", help="--strategy model: reply length cap."),
    concurrency: int = typer.Option(8, "--concurrency", "-j", min=1, help="--strategy model: requests in flight."),
    json_: bool = typer.Option(False, "--json", help="Print the report (without the unpaired list) as JSON."),
) -> None:
    """Build EmPO preference pairs in TRL's conversational format, one file per epoch.

    Example: kyokan prefs build dialogues.jsonl -t goemotions28 --epochs 3 --seed 13 -o pairs/
    Example: kyokan prefs build ed_train.csv -t ed32 --strategy same-situation -o pairs-hard/
    Example: kyokan prefs build dialogues.jsonl --strategy model --model openai:gpt-4o-mini -o pairs-gen/
    """
    from kyokan.data import load_dialogues
    from kyokan.prefs.build import build_pairs, write_pairs
    from kyokan.provenance import sha256_file
    from kyokan.taxonomy import get_taxonomy

    t0 = time.perf_counter()
    dialogues = load_dialogues(data, fmt=fmt, taxonomy=taxonomy)
    tax_name = taxonomy or _default_taxonomy(data, fmt)
    tax = get_taxonomy(tax_name)
    opts: dict[str, object] = {}
    if strategy == "same-situation":
        opts["fallback"] = not no_fallback
    elif strategy == "model":
        opts.update(model=model, base_url=base_url, out_dir=output, temperature=temperature,
                    max_new_tokens=max_new_tokens, concurrency=concurrency)
    elif any(x is not None for x in (model, base_url)):
        raise KyokanError("--model/--base-url only apply to --strategy model")
    pairs = build_pairs(dialogues, tax, epochs=epochs, seed=seed, strategy=strategy, system=system,
                        only_epochs=epoch or None, **opts)
    data_info = {"path": str(data), "sha256": sha256_file(data) if data.is_file() else None,
                 "format": fmt, "dialogues": len(dialogues)}
    report = write_pairs(output, pairs, epochs=epochs, data=data_info, started=t0)
    if json_:
        print_json({k: v for k, v in report.items() if k != "unpaired"})
        return
    out.print(f"{output}: {report['paired']} pairs × {len(pairs.draws)} epoch(s) from {report['dialogues']} dialogues "
              f"({report['strategy']}, seed {seed}) in {report['elapsed_s']:.2f} s")
    if report["unpaired_count"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in report["unpaired_reasons"].items())
        err.print(f"{report['unpaired_count']} unpaired ({reasons}); see {output / 'report.json'}", markup=False)


def _default_taxonomy(data: Path, fmt: str | None) -> str:
    from kyokan.data import detect_format

    f = fmt or detect_format(data)
    return "ed32" if f == "ed" else "goemotions28"


@prefs_app.command("check")
def check_cmd(
    pairs_dir: Path = typer.Argument(..., help="A folder written by `kyokan prefs build`."),
    data: Path = typer.Option(..., "--data", "-d", help="The dialogues the pairs were built from."),
    fmt: str = typer.Option(None, "--format", "-f", help=FMT_HELP),
    json_: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Check every pair against the dialogues: chosen is the dialogue's own last listener turn,
    rejected comes from a dialogue of the opposite emotion (per strategy), every pairable dialogue is
    paired once in every epoch. Exit 2 with PATH:LINE: field: message on any problem.

    Example: kyokan prefs check pairs/ --data dialogues.jsonl
    """
    from kyokan.data import load_dialogues
    from kyokan.prefs.check import check_rows, load_pair_dir
    from kyokan.taxonomy import get_taxonomy

    report, epochs, paths = load_pair_dir(pairs_dir)
    tax = get_taxonomy(report["taxonomy"])
    dialogues = load_dialogues(data, fmt=fmt, taxonomy=report["taxonomy"])
    probs = check_rows(dialogues, tax, epochs, strategy=report["strategy"], seed=report["seed"],
                       system=report.get("system"), path_of=paths)
    summary = {"pairs_dir": str(pairs_dir), "epochs": sorted(epochs), "rows": sum(len(r) for r in epochs.values()),
               "problems": len(probs)}
    if json_:
        print_json(summary)
    if probs:
        raise InputError(probs[:50], len(probs))
    if not json_:
        out.print(f"{pairs_dir}: {summary['rows']} pairs in {len(epochs)} epoch(s), all valid")


def register(app: typer.Typer) -> None:
    app.add_typer(prefs_app, name="prefs")
