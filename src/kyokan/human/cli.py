"""`kyokan human build|import|agree`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table as RichTable

from kyokan.console import err, out, print_json, print_text
from kyokan.errors import KyokanError

human_app = typer.Typer(help="Human evaluation: survey packets, rating import, judge-vs-human agreement.",
                        no_args_is_help=True)


@human_app.command("build")
def build_cmd(
    inputs: list[str] = typer.Argument(..., help="Dialogue files to rate; NAME=PATH names the source of a file."),
    style: str = typer.Option("emplifai", "--style", help="emplifai (groups × raters, 7 Likert metrics) or empo (block-randomised batches, sliders)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (recorded)."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the packets (safe to hand to raters)."),
    key: Path = typer.Option(None, "--key", help="Where the unblinding key goes (default: OUTPUT.key.json beside the folder)."),
    group_size: int = typer.Option(10, "--group-size", help="emplifai: dialogues per group."),
    raters: int = typer.Option(3, "--raters", help="emplifai: raters per group."),
    n_samples: int = typer.Option(135, "--n-samples", help="empo: contexts to sample."),
    min_per_emotion: int = typer.Option(4, "--min-per-emotion", help="empo: at least this many samples per emotion."),
    batch_size: int = typer.Option(15, "--batch-size", help="empo: items per batch."),
    block_size: int = typer.Option(5, "--block-size", help="empo: consecutive items from one source."),
    ratings: int = typer.Option(3, "--ratings", help="empo: ratings per item."),
    unblocked: list[str] = typer.Option([], "--unblocked", help="empo: source rated in single-source batches (repeatable)."),
    attention_checks: int = typer.Option(1, "--attention-checks", help="Instructed-response items per task."),
    json_: bool = typer.Option(False, "--json", help="Print the design summary as JSON."),
) -> None:
    """Build a seeded survey: rating packets (CSV + JSONL tasks) and a separate key file.

    Example: kyokan human build gpt.jsonl --style emplifai --seed 42 -o survey/
    Example: kyokan human build dpo=dpo.jsonl sft=sft.jsonl human=gold.jsonl --style empo --seed 7 -o survey/
    """
    from kyokan.human.design import STYLES, build_emplifai, build_empo
    from kyokan.human.packets import items_from_file, parse_inputs, write_design
    from kyokan.provenance import provenance

    if style not in STYLES:
        raise KyokanError(f"unknown style {style!r}; choose from {sorted(STYLES)}")
    key = key or output.parent / f"{output.name.rstrip('/') or 'survey'}.key.json"
    items = []
    by_source: dict[str, list] = {}
    for path, name in parse_inputs(inputs):
        got = items_from_file(path, name)
        items += got
        for it in got:
            by_source.setdefault(it.source, []).append(it)
    if style == "emplifai":
        design = build_emplifai(items, seed=seed, group_size=group_size, raters=raters, attention_checks=attention_checks)
    else:
        design = build_empo(by_source, seed=seed, n_samples=n_samples, min_per_emotion=min_per_emotion,
                            batch_size=batch_size, block_size=block_size, ratings=ratings,
                            attention_checks=attention_checks, unblocked=unblocked)
    prov = provenance("kyokan human build", {"inputs": inputs, **design.params, "style": style}, seed)
    files = write_design(design, output, key, prov)
    summary = {**design.summary(), "files": files}
    if json_:
        print_json(summary)
        return
    for w in design.warnings:
        err.print(f"warning: {w}", markup=False)
    out.print(f"{style} survey: {summary['tasks']} tasks, {summary['ratings_requested']} ratings of "
              f"{summary['distinct_items']} items + {summary['attention_checks']} attention checks (seed {seed}) → {output}")
    out.print(f"key (keep it away from raters): {key}", markup=False)


@human_app.command("import")
def import_cmd(
    ratings: list[Path] = typer.Argument(..., help="Rating files (CSV or JSONL): rater, item, one column per scale; or EmPO's he_data.csv with --format empo."),
    key: Path = typer.Option(None, "--key", help="The key file written by `kyokan human build` (not needed with --format empo)."),
    fmt: str = typer.Option(None, "--format", "-f", help="empo: EmPO's released he_data.csv (sources and items are in the file; no key)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (ratings.jsonl, per_item.jsonl, summary.json)."),
    keep_failed: bool = typer.Option(False, "--keep-failed-attention", help="Keep raters who failed an attention check."),
    json_: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Check and import ratings, unblind them with the key, aggregate per item (mean of raters) and
    per source, and measure inter-rater agreement (Krippendorff's α, ICC). Bad rows: PATH:LINE:
    field: message, exit 2, nothing written.

    Example: kyokan human import filled_packets.csv --key survey.key.json -o human/
    Example: kyokan human import empo/data/he_data.csv --format empo -o runs/empo-human
    """
    from kyokan.human.ratings import (
        aggregate,
        attention_report,
        load_key,
        read_empo_ratings,
        read_ratings,
    )
    from kyokan.io import write_json
    from kyokan.provenance import provenance
    from kyokan.records import HumanSummary, ItemMeans, Rating, write_record, write_rows

    if fmt == "empo":
        if key is not None or len(ratings) != 1:
            raise KyokanError("--format empo reads one he_data.csv and needs no --key")
        rows, k = read_empo_ratings(ratings[0])
    elif fmt:
        raise KyokanError(f"unknown ratings format {fmt!r} (empo, or none with --key)")
    else:
        if key is None:
            raise KyokanError("--key is required (the key of `kyokan human build`), or --format empo for EmPO's he_data.csv")
        k = load_key(key)
        rows = read_ratings(list(ratings), k)
    att = attention_report(rows, k)
    failed = {r for r, d in att.items() if d["failed"]}
    agg = aggregate(rows, k, set() if keep_failed else failed)
    prov = provenance("kyokan human import", {"ratings": [str(p) for p in ratings], "key": str(key) if key else None,
                                              "format": fmt,
                                              "exclude_failed_attention": not keep_failed}, k.get("seed"))
    summary = {"kind": "kyokan.human.summary", "version": 1, "style": k.get("style"), "scales": k["scales"],
               "ratings": len(agg["rows"]), "raters": agg["raters"],
               "items": agg["items"], "per_source": agg["per_source"], "agreement": agg["agreement"],
               "attention": {"raters_checked": len(att), "failed": sorted(failed), "excluded": [] if keep_failed else sorted(failed),
                             "details": att}, "provenance": prov}
    # validated as the typed records before anything is written
    write_rows(output / "ratings.jsonl", [Rating.model_validate(r) for r in agg["rows"]])
    write_rows(output / "per_item.jsonl", [ItemMeans.model_validate(r) for r in agg["per_item"]])
    write_record(output / "summary.json", HumanSummary.model_validate(summary))
    write_json(output / "provenance.json", prov)
    if json_:
        print_json({k2: v for k2, v in summary.items() if k2 != "scales"})
        return
    for r in sorted(failed):
        err.print(f"rater {r} failed {len(att[r]['failed'])} attention check(s)"
                  + ("" if keep_failed else " — excluded"), markup=False)
    t = RichTable("source", *[s["name"] for s in k["scales"]])
    for src, mets in agg["per_source"].items():
        t.add_row(src, *[f"{mets[s['name']]['mean']:.2f}" for s in k["scales"]])
    out.print(t)
    out.print(f"{summary['ratings']} ratings by {summary['raters']} raters of {summary['items']} items → {output}")


@human_app.command("agree")
def agree_cmd(
    judge: Path = typer.Argument(..., help="The judge's rows (kyokan judge's judged.jsonl)."),
    human: Path = typer.Argument(..., help="Imported human ratings: the folder of `kyokan human import` or its per_item.jsonl."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder: emplifai_table5.csv/.md, agreement.json."),
    source: list[str] = typer.Option([], "--source", help="Which judge rows go with which human ratings: SOURCE, or "
                                                         "JUDGE_SOURCE=HUMAN_SOURCE when the names differ (repeatable; "
                                                         "default: every source both sides name)."),
    metric_map: list[str] = typer.Option([], "--map", help="JUDGE_METRIC=HUMAN_SCALE when the names differ (repeatable)."),
    json_: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Judge vs human per metric, laid out as EmplifAI Table 5: Pearson r (p) where both sides vary,
    the mean absolute difference alone where one side has no variance (and the table says so).

    Example: kyokan human agree runs/demo/judge/judged.jsonl human/ -o agree/
    """
    from kyokan.human.agree import agree, parse_source_pairs
    from kyokan.io import write_json
    from kyokan.provenance import provenance

    mm = {}
    for m in metric_map:
        a, sep, b = m.partition("=")
        if not sep:
            raise KyokanError(f"--map {m!r}: expected JUDGE_METRIC=HUMAN_SCALE")
        mm[a] = b
    res = agree(judge, human, sources=parse_source_pairs(source), metric_map=mm)
    for t in res["tables"]:
        t.write(output)
    prov = provenance("kyokan human agree", {"judge": str(judge), "human": str(human), "source": source, "map": mm})
    write_json(output / "agreement.json", {"results": res["results"], "provenance": prov})
    if json_:
        print_json(res["results"])
        return
    for t in res["tables"][::2]:
        print_text(t.to_markdown())
    out.print(f"tables → {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(human_app, name="human")
