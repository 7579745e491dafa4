"""`kyokan data validate|stats|sample|split|convert|import|bundled`."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from kyokan.console import err, out, print_json
from kyokan.errors import KyokanError

data_app = typer.Typer(help="Dialogue data: validate, statistics, samples, splits, conversion.", no_args_is_help=True)

FMT_HELP = "Input layout: jsonl, csv, parquet, ed (EmpatheticDialogues CSV), kokorochat, hf (datasets folder). Default: from the path."
TAX_HELP = "Taxonomy name or JSON path (default: goemotions28; ed32 for EmpatheticDialogues CSVs)."


@data_app.command("validate")
def validate_cmd(
    path: Path = typer.Argument(..., help="Dialogue file or folder."),
    fmt: str = typer.Option(None, "--format", "-f", help=FMT_HELP),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help=TAX_HELP),
    allow_unlabelled: bool = typer.Option(None, "--allow-unlabelled/--no-allow-unlabelled",
                                          help="Accept emotion: null (default: only for KokoroChat)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Write valid records to -o and the rest to a rejects file."),
    output: Path = typer.Option(None, "-o", "--output", help="Write the records here (.jsonl/.parquet/folder), normalised: only when all are valid, or the valid ones with --skip-invalid."),
    max_problems: int = typer.Option(50, "--max-problems", help="How many problems to print."),
    json_: bool = typer.Option(False, "--json", help="Print a machine-readable summary on stdout."),
) -> None:
    """Check a dialogue file: exit 0 when valid; otherwise each problem as PATH:LINE: field: message
    on stderr and exit 2.

    Example: kyokan data validate dialogues.jsonl
    Example: kyokan data validate raw.jsonl --skip-invalid -o clean.jsonl   (rejects in clean.rejects.jsonl)
    """
    from kyokan.data.api import write_dialogues
    from kyokan.data.validate import iter_checked
    from kyokan.io import JsonlAppender

    if skip_invalid and output is None:
        raise KyokanError("--skip-invalid needs -o OUT for the valid records")
    shown = 0
    total_problems = 0
    valid = invalid = 0
    rejects_path = _rejects_path(output) if output else None
    rejects = None
    if skip_invalid and rejects_path:
        rejects_path.unlink(missing_ok=True)
        rejects = JsonlAppender(rejects_path)

    def valid_records() -> Any:
        nonlocal shown, total_problems, valid, invalid
        for c in iter_checked(str(path), fmt=fmt, taxonomy=taxonomy, allow_unlabelled=allow_unlabelled,
                              normalize=output is not None):
            if c.record is not None:
                valid += 1
                yield c.record
                continue
            invalid += 1
            total_problems += len(c.problems)
            for p in c.problems:
                if shown < max_problems:
                    err.print(str(p), markup=False, soft_wrap=True)
                    shown += 1
            if rejects is not None:
                rejects.write({"path": c.path, "line": c.line, "problems": [str(p) for p in c.problems],
                               "record": c.raw})

    class _Invalid(Exception):
        pass

    def all_or_nothing() -> Any:
        yield from valid_records()
        if invalid:
            raise _Invalid  # inside the writer: its temp file is discarded, -o is not written

    if skip_invalid and output is not None:
        try:
            write_dialogues(output, valid_records())
        finally:
            if rejects is not None:
                rejects.close()
    elif output is not None:
        # -o without --skip-invalid: the normalised records go to -o only when every one is valid
        with contextlib.suppress(_Invalid):
            write_dialogues(output, all_or_nothing())
    else:
        for _ in valid_records():
            pass
    if total_problems > shown:
        err.print(f"... and {total_problems - shown} more problems", markup=False)
    summary = {"path": str(path), "valid": valid, "invalid": invalid, "problems": total_problems}
    if skip_invalid:
        summary.update({"output": str(output), "rejects": str(rejects_path)})
    elif output is not None:
        summary["output"] = None if invalid else str(output)
    if json_:
        print_json(summary)
    if invalid:
        msg = f"{path}: {invalid} invalid record(s), {valid} valid"
        if skip_invalid:
            err.print(f"{msg}; valid ones written to {output}, rejects with reasons to {rejects_path}", markup=False)
            return
        if output is not None:
            msg += f"; {output} not written (--skip-invalid writes the valid ones and a rejects file)"
        err.print(msg, markup=False)
        raise typer.Exit(2)
    if not json_:
        out.print(f"{path}: {valid} valid dialogues" + (f" → {output}" if output is not None else ""))


def _rejects_path(output: Path) -> Path:
    from kyokan.io import sidecar

    return sidecar(output, "rejects", ".jsonl")


@data_app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="Dialogue file or folder."),
    fmt: str = typer.Option(None, "--format", "-f", help=FMT_HELP),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help=TAX_HELP),
    tokens: bool = typer.Option(True, "--tokens/--no-tokens", help="Token lengths (fugashi for Japanese)."),
    json_: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    """Counts per emotion and situation, label balance, lengths in characters and tokens, duplicates.

    Example: kyokan data stats dialogues.jsonl --json
    """
    from kyokan.data.api import read_records
    from kyokan.data.stats import compute_stats
    from kyokan.data.validate import taxonomy_for

    tax = taxonomy_for(str(path), fmt, taxonomy)
    st = compute_stats(read_records(path, fmt=fmt, taxonomy=taxonomy), n_labels=len(tax), tokens=tokens,
                       rescan=lambda: read_records(path, fmt=fmt, taxonomy=taxonomy))
    st["taxonomy"] = tax.name
    if json_:
        print_json(st)
        return
    bal = st["label_balance"]["normalized_entropy"]
    out.print(f"{path}: {st['dialogues']} dialogues, {st['situations']} situations, taxonomy {tax.name}; "
              f"label balance {bal:.3f} (normalised entropy over the taxonomy's {len(tax)} labels: 1 = even)",
              markup=False, soft_wrap=True)
    t = Table("emotion", "dialogues", "situations")
    for e, v in st["per_emotion"].items():
        t.add_row(e, str(v["dialogues"]), str(v["situations"]))
    out.print(t)
    lt = Table("length (chars)", "mean", "median", "min", "max")
    for k, v in st["length_chars"].items():
        if v.get("n"):
            lt.add_row(k, str(v["mean"]), str(v["median"]), str(v["min"]), str(v["max"]))
    out.print(lt)
    d = st["duplicate_texts"]
    pp = st["per_emotion_situation"]["dialogues_per_pair"]
    if pp.get("n"):
        out.print(f"dialogues per emotion–situation pair ({pp['n']} pairs): mean {pp['mean']:g} (SD {pp['sd']:g}), "
                  f"min {pp['min']}, median {pp['median']:g}, max {pp['max']}", markup=False, soft_wrap=True)
    out.print(f"duplicate turn texts: {d['distinct_repeated']} repeated, {d['extra_copies']} extra copies "
              "(--json for every number)", markup=False)


@data_app.command("sample")
def sample_cmd(
    path: Path = typer.Argument(..., help="Dialogue file or folder."),
    n: int = typer.Option(..., "--n", help="Number of emotion–situation pairs (EmplifAI: 100)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (EmplifAI used 42)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.jsonl, .parquet or a datasets folder)."),
    stratify: bool = typer.Option(False, "--stratify", help="Spread the pairs evenly over emotions."),
    all_dialogues: bool = typer.Option(False, "--all-dialogues", help="Write every dialogue of each sampled pair, not one."),
    fmt: str = typer.Option(None, "--format", "-f", help=FMT_HELP),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help=TAX_HELP),
    json_: bool = typer.Option(False, "--json", help="Print the sampling report as JSON."),
) -> None:
    """A reproducible sample of emotion–situation pairs, one dialogue each (seeded).

    Example: kyokan data sample dialogues.jsonl --n 100 --seed 42 -o eval_pairs.jsonl
    """
    from kyokan.data.api import read_records, write_dialogues
    from kyokan.data.sampling import sample_pairs

    if n <= 0:
        raise KyokanError("--n must be positive")
    rows, report = sample_pairs(read_records(path, fmt=fmt, taxonomy=taxonomy), n, seed,
                                stratify=stratify, all_dialogues=all_dialogues)
    write_dialogues(output, rows)
    report["output"] = str(output)
    if json_:
        print_json(report)
    else:
        out.print(f"{report['rows']} dialogues from {n} of {report['pairs_available']} emotion–situation pairs "
                  f"(seed {seed}) → {output}")


@data_app.command("split")
def split_cmd(
    path: Path = typer.Argument(..., help="Dialogue file or folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder for train/dev/test."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    ratios: str = typer.Option("0.8,0.1,0.1", "--ratios", help="train,dev,test proportions."),
    out_format: str = typer.Option("jsonl", "--to", help="Output layout: jsonl or parquet."),
    fmt: str = typer.Option(None, "--format", "-f", help=FMT_HELP),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help=TAX_HELP),
    json_: bool = typer.Option(False, "--json", help="Print the split report as JSON."),
) -> None:
    """Train/dev/test by situation (no situation in two splits), stratified by emotion, seeded.

    Example: kyokan data split dialogues.jsonl -o splits/ --seed 13
    """
    from kyokan.data.api import read_records, write_dialogues
    from kyokan.data.sampling import SPLITS, assign_splits, parse_ratios
    from kyokan.io import write_json

    r = parse_ratios(ratios)
    if out_format not in ("jsonl", "parquet"):
        raise KyokanError("--to must be jsonl or parquet")
    sit: dict[str, Counter[str]] = defaultdict(Counter)
    for rec in read_records(path, fmt=fmt, taxonomy=taxonomy):  # pass 1: situations and their labels
        sit[rec["situation_id"]][rec["emotion"] or ""] += 1
    assign = assign_splits(sit, r, seed)
    counts: dict[str, Any] = {}
    for split in SPLITS:  # pass 2 per split: streams, nothing held in memory
        n = write_dialogues(output / f"{split}.{'parquet' if out_format == 'parquet' else 'jsonl'}",
                            (rec for rec in read_records(path, fmt=fmt, taxonomy=taxonomy)
                             if assign[rec["situation_id"]] == split), fmt=out_format)
        counts[split] = {"dialogues": n, "situations": sum(1 for s in assign.values() if s == split)}
    report = {"input": str(path), "seed": seed, "ratios": dict(zip(SPLITS, r, strict=True)), "splits": counts,
              "stratified_by": "emotion (majority label of each situation)"}
    write_json(output / "split_report.json", report)
    if json_:
        print_json(report)
    else:
        out.print(" · ".join(f"{s}: {c['dialogues']} dialogues / {c['situations']} situations" for s, c in counts.items())
                  + f" → {output}")


@data_app.command("convert")
def convert_cmd(
    path: Path = typer.Argument(..., help="Input file or folder (any readable layout)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output: .jsonl, .parquet, or a folder (datasets)."),
    fmt: str = typer.Option(None, "--format", "-f", help=FMT_HELP),
    to: str = typer.Option(None, "--to", help="jsonl, parquet or hf (default: from the output path)."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help=TAX_HELP),
    allow_unlabelled: bool = typer.Option(None, "--allow-unlabelled/--no-allow-unlabelled", help="Accept emotion: null."),
) -> None:
    """Convert between layouts (validating on the way); e.g. EmpatheticDialogues CSV → kyokan JSONL.

    Example: kyokan data convert train.csv -o ed_train.jsonl
    """
    from kyokan.data.api import read_records, write_dialogues

    n = write_dialogues(output, read_records(path, fmt=fmt, taxonomy=taxonomy, allow_unlabelled=allow_unlabelled), fmt=to)
    out.print(f"{n} dialogues → {output}")


@data_app.command("import")
def import_cmd(
    path: Path = typer.Argument(..., help="Another tool's file: CSV, TSV or JSONL (or an EmPO prediction file with --preset empo)."),
    output: Path = typer.Option(..., "-o", "--output", help="JSONL to write (generation rows or dialogues)."),
    mapping: list[str] = typer.Option([], "--map", help="TARGET=COLUMN (repeatable or comma-separated); targets: id, response, context, reference, emotion, lang, source, epitome.<er|ex|ip>.<generated|reference> (generations) or id, emotion, situation, lang, turns, context, reply (dialogues)."),
    kind: str = typer.Option("generations", "--as", help="generations (rows `kyokan eval responses` scores) or dialogues."),
    preset: str = typer.Option(None, "--preset", help="empo: EmPO's released predictions/preds_*.txt (gens, prevs, gen_targets, EPITOME levels)."),
    sep: str = typer.Option(None, "--sep", help="Field separator of a CSV (default: , or tab for .tsv; EmPO uses ~)."),
    lang: str = typer.Option(None, "--lang", help="Language of rows without a lang column (default en)."),
    source: str = typer.Option(None, "--source", help="System name recorded on every row."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help=TAX_HELP),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Import another tool's rows by a column map (all rows or none: problems as PATH:LINE: field: message).

    Example: kyokan data import preds.tsv --map id=qid,response=output,context=prompt,reference=gold -o gen.jsonl
    Example: kyokan data import empo/predictions/preds_dlrxxx_zephyr-7b-sft-full_epi.txt --preset empo -o baseline.jsonl
    Example: kyokan data import pairs.csv --as dialogues --map context=prompt,reply=answer,emotion=label -t ed32 -o d.jsonl
    """
    from kyokan.data.importing import EMPO_MAP, import_empo_predictions, import_rows, parse_map
    from kyokan.io import write_jsonl

    m = parse_map(mapping)
    if preset == "empo":
        if m or kind != "generations":
            rows = import_rows(path, {**EMPO_MAP, **m}, kind=kind, sep=sep or "~", lang=lang, source=source,
                               taxonomy=taxonomy)
        else:
            rows = import_empo_predictions(path, source)
    elif preset:
        raise KyokanError(f"unknown preset {preset!r} (empo)")
    else:
        rows = import_rows(path, m, kind=kind, sep=sep, lang=lang, source=source, taxonomy=taxonomy)
    write_jsonl(output, rows)
    info = {"rows": len(rows), "kind": kind, "output": str(output)}
    print_json(info) if json_ else out.print(f"{len(rows)} {kind} rows → {output}", markup=False)


@data_app.command("bundled")
def bundled_cmd(
    name: str = typer.Argument(None, help="Print only this sample's path: ja or ed-en."),
    json_: bool = typer.Option(False, "--json", help="Print {name: path} as JSON."),
) -> None:
    """Paths of the sample data bundled with kyokan (CC BY 4.0, written for this project).

    Example: kyokan data validate "$(kyokan data bundled ja)"
    """
    from kyokan.data.samples import BUNDLED, sample_path

    names = list(BUNDLED) if name is None else [name]
    rows = {k: str(sample_path(k)) for k in names}  # an unknown name: exit 2 naming the choices
    if json_:
        print_json(rows)
    elif name is not None:
        out.print(rows[name], markup=False, soft_wrap=True)
    else:
        for k, v in rows.items():
            out.print(f"{k}\t{v}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
