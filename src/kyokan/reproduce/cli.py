"""`kyokan reproduce empo`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from kyokan.console import err, out, print_json

reproduce_app = typer.Typer(help="Rebuild published tables from released artifacts and compare them with the paper.",
                            no_args_is_help=True)


@reproduce_app.command("empo")
def empo_cmd(
    root: Path = typer.Argument(..., help="An EmPO checkout (predictions/, data/he_data.csv, data/misc/, data/empathy_datasets/)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder: comparison.csv, report.html, summary.json, systems/."),
    profile: str = typer.Option("lee2024", "--profile", "-p", help="Metric profile (lee2024 = the paper's way; kyokan = kyokan's definitions)."),
    bertscore_model: str = typer.Option(None, "--bertscore-model", help="BERTScore encoder: default kyokan's offline encoder; 'none' to skip; or a hub id/path (the paper: roberta-large)."),
    bertscore_layer: int = typer.Option(None, "--bertscore-layer", help="BERTScore layer (the paper: 17 for roberta-large)."),
    nrc_vad: Path = typer.Option(None, "--nrc-vad", help="NRC-VAD lexicon (default DIR/data/misc/NRC-VAD-Lexicon.txt or VAD.json)."),
    intensity: Path = typer.Option(None, "--intensity", help="NRC Emotion Intensity file (default DIR/data/misc/intensity.txt)."),
    nidf_counts: Path = typer.Option(None, "--nidf-counts", help="NIDF count table (default DIR/data/empathy_datasets/empathetic_dialogues/ed_counts.pkl)."),
    he_data: Path = typer.Option(None, "--he-data", help="Human ratings (default DIR/data/he_data.csv)."),
    seed: int = typer.Option(34, "--seed", help="Permutation-test seed (EmPO's notebooks: random_state=34)."),
    resamples: int = typer.Option(10000, "--resamples", help="Permutation-test resamples (EmPO: 10,000)."),
    json_: bool = typer.Option(False, "--json", help="Print the summary counts and mismatches as JSON."),
) -> None:
    """Rebuild EmPO's Tables 2, 4, 5, 7 and §4.3 from its public release and compare every cell with
    the paper: OUT/comparison.csv (table, system, metric, paper, kyokan) and OUT/report.html.

    Example: kyokan reproduce empo ~/src/empo -o runs/empo-repro
    Example: kyokan reproduce empo ~/src/empo --bertscore-model none -o runs/empo-quick
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from kyokan.reproduce.empo.run import EmpoOptions, reproduce_empo

    opts = EmpoOptions(profile=profile, bertscore_model=bertscore_model, bertscore_layer=bertscore_layer,
                       nrc_vad=str(nrc_vad) if nrc_vad else None, intensity=str(intensity) if intensity else None,
                       nidf_counts=str(nidf_counts) if nidf_counts else None, he_data=str(he_data) if he_data else None,
                       seed=seed, resamples=resamples)
    s = reproduce_empo(root, output, opts, progress=lambda m: err.print(f"[reproduce] {m}", markup=False))
    bad = [c for c in s["cells"] if c["status"] == "mismatch"]
    if json_:
        print_json({"counts": s["counts"], "mismatches": bad, "skipped": s["skipped"]})
        return
    c = s["counts"]
    out.print(f"{c['match']} cells match, {c['mismatch']} mismatch, {c['not_computed']} not computed "
              f"(profile {s['profile']['name']}, {s['seconds']} s)", markup=False)
    for r in bad:
        out.print(f"  Table {r['table']} {r['system']} {r['metric']}: paper {r['paper_printed']}, kyokan "
                  f"{r['kyokan']:.4f} — {r['note']}", markup=False)
    for k, v in s["skipped"].items():
        err.print(f"skipped {k}: {v}", markup=False)
    out.print(f"→ {output}/comparison.csv, {output}/report.html", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(reproduce_app, name="reproduce")
