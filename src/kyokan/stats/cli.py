"""`kyokan stats compare|agree-table`: significance between systems from per-item scores."""

from __future__ import annotations

from pathlib import Path

import typer

from kyokan.console import out, print_json
from kyokan.errors import KyokanError

stats_app = typer.Typer(help="Significance tests between systems (EmPO Table 7 layout).", no_args_is_help=True)


@stats_app.command("compare")
def compare_cmd(
    inputs: list[Path] = typer.Argument(..., help="Per-item files (JSONL/CSV): judge rows, human per_item.jsonl, metrics per_example.jsonl."),
    output: Path = typer.Option(None, "-o", "--output", help="Folder for empo_table7.csv/.md and compare.json."),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated metrics (default: every metric all sources have)."),
    test: str = typer.Option("welch", "--test", help="welch, student, paired, permutation, permutation-paired, mcnemar."),
    alternative: str = typer.Option("greater", "--alternative", help="greater (left source higher), less, two-sided."),
    correction: str = typer.Option("bonferroni", "--correction", help="bonferroni, holm or none (over every pair × metric)."),
    order: str = typer.Option(None, "--order", help="Comma-separated sources, hypothesised best first (default: by mean)."),
    markers: str = typer.Option("corrected", "--markers", help="Mark cells by the corrected or the raw p (raw reproduces EmPO Table 7)."),
    source_field: str = typer.Option(None, "--source-field", help="Dotted field naming the system (default: source / meta.generation.model / model)."),
    id_field: str = typer.Option("id", "--id-field", help="Field identifying the item (pairs items for paired tests)."),
    seed: int = typer.Option(0, "--seed", help="Seed for permutation tests."),
    json_: bool = typer.Option(False, "--json", help="Print every test as JSON."),
) -> None:
    """One-sided tests that each source scores higher than each other one, per metric, with
    Cohen's d and a Bonferroni/Holm correction — EmPO Table 7's layout.

    Example: kyokan stats compare runs/demo/human/per_item.jsonl --test welch --correction bonferroni -o runs/demo/stats
    """
    from kyokan.io import write_json
    from kyokan.provenance import provenance
    from kyokan.stats.data import load_scores, metric_names
    from kyokan.stats.multiple import CORRECTIONS
    from kyokan.stats.tables import TESTS, pairwise_compare

    if test not in TESTS:
        raise KyokanError(f"unknown --test {test!r}; choose from {', '.join(TESTS)}")
    if correction not in CORRECTIONS:
        raise KyokanError(f"unknown --correction {correction!r}; choose from {', '.join(CORRECTIONS)}")
    if alternative not in ("greater", "less", "two-sided"):
        raise KyokanError("--alternative must be greater, less or two-sided")
    if markers not in ("corrected", "raw"):
        raise KyokanError("--markers must be corrected or raw")
    groups: dict[str, dict[str, dict[str, float | None]]] = {}
    for p in inputs:
        for src, items in load_scores(p, source_field=source_field, id_field=id_field).items():
            if src in groups:
                raise KyokanError(f"source {src!r} appears in more than one input file")
            groups[src] = items
    if len(groups) < 2:
        raise KyokanError(f"need at least two sources to compare, found {sorted(groups)}")
    mets = [m.strip() for m in metrics.split(",")] if metrics else metric_names(groups)
    if not mets:
        raise KyokanError("no metric is present in every source; pass --metrics")
    ordr = [s.strip() for s in order.split(",")] if order else None
    try:
        table, detail, results = pairwise_compare(groups, mets, test=test, alternative=alternative, correction=correction,
                                                  order=ordr, markers_on=markers, seed=seed)
    except ValueError as e:
        raise KyokanError(str(e)) from None
    if output is not None:
        table.write(output)
        detail.write(output)
        write_json(output / "compare.json", {"tests": results, "provenance": provenance(
            "kyokan stats compare", {"inputs": [str(p) for p in inputs], "metrics": mets, "test": test,
                                     "alternative": alternative, "correction": correction, "order": ordr,
                                     "markers": markers}, seed)})
    if json_:
        print_json(results)
        return
    out.print(table.to_markdown(), markup=False)
    if output is not None:
        out.print(f"tables → {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")
