"""`kyokan stats compare`: significance between systems from per-item scores."""

from __future__ import annotations

from pathlib import Path

import typer

from kyokan.console import out, print_json, print_text
from kyokan.errors import KyokanError

stats_app = typer.Typer(help="Significance tests between systems (EmPO Table 7 layout).", no_args_is_help=True)


@stats_app.command("compare")
def compare_cmd(
    inputs: list[Path] = typer.Argument(..., help="Per-item files, as written: eval responses' per_example.jsonl, human "
                                                  "import's per_item.jsonl, judge rows; or a CSV score table "
                                                  "(source, id, one column per metric)."),
    output: Path = typer.Option(None, "-o", "--output", help="Folder for empo_table7.csv/.md, empo_table7_detail.csv/.md and compare.json."),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated metrics (default: every metric all sources have)."),
    test: str = typer.Option("welch", "--test", help="welch, student, paired (t-test on items matched by id), permutation, permutation-paired, mcnemar (exact, 0/1 outcomes)."),
    alternative: str = typer.Option("two-sided", "--alternative", help="two-sided (default); greater or less make every pair of --order one-sided: greater = --order is hypothesised highest first, less = lowest first. One-sided needs --order (or use --pairs)."),
    order: str = typer.Option(None, "--order", help="Comma-separated sources. With a one-sided --alternative the hypothesised ranking (A,B,C = A > B > C with greater), fixed before looking at the data; otherwise only the table's order (default: input order)."),
    pairs: str = typer.Option(None, "--pairs", help="Explicit hypotheses instead of --order: \"dpo>sft,sft>base\" (one-sided, left hypothesised higher), A<B, or A!=B (two-sided)."),
    effect: str = typer.Option("auto", "--effect", help="Effect size in the cells: dz (mean difference / SD of differences; paired tests), pooled (Cohen's d with the pooled SD, as EmPO Table 7), auto (dz for paired tests, pooled otherwise). Both are in compare.json."),
    resamples: int = typer.Option(None, "--resamples", help="Permutation tests: random rearrangements per test (default 9999; the smallest attainable p is 1/(N+1), 2/(N+1) two-sided)."),
    exact: bool = typer.Option(None, "--exact/--sampled", help="Permutation tests: enumerate every rearrangement (refused beyond 2^20), or always sample (default: exact when all rearrangements fit in --resamples)."),
    correction: str = typer.Option("bonferroni", "--correction", help="bonferroni, holm or none (over every comparison × metric)."),
    markers: str = typer.Option("corrected", "--markers", help="Mark cells by the corrected or the raw p (raw is what EmPO Table 7 marked)."),
    source_field: str = typer.Option(None, "--source-field", help="CSV score tables: the column naming the system (default: source)."),
    id_field: str = typer.Option(None, "--id-field", help="CSV score tables: the column identifying the item (default: id)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the permutation tests' generator (numpy PCG64)."),
    json_: bool = typer.Option(False, "--json", help="Print every test as JSON."),
) -> None:
    """Pairwise tests between sources, per metric, with effect sizes and a Bonferroni/Holm
    correction — EmPO Table 7's layout. Two-sided unless you state the direction in advance
    (--order with --alternative greater/less, or --pairs); it is never taken from the observed means.

    Example: kyokan stats compare human/per_item.jsonl --test paired --effect pooled --alternative greater --order baseline,dpo,sft,human -o stats/
    """
    from kyokan.provenance import provenance
    from kyokan.records import CompareInput, CompareResult, write_record
    from kyokan.stats.base import ALTERNATIVES
    from kyokan.stats.compare import EFFECTS, TESTS, parse_comparisons
    from kyokan.stats.data import ScoreFile, load_scores, metric_names
    from kyokan.stats.multiple import CORRECTIONS
    from kyokan.stats.tables import pairwise_compare

    if test not in TESTS:
        raise KyokanError(f"unknown --test {test!r}; choose from {', '.join(TESTS)}")
    if correction not in CORRECTIONS:
        raise KyokanError(f"unknown --correction {correction!r}; choose from {', '.join(CORRECTIONS)}")
    if alternative not in ALTERNATIVES:
        raise KyokanError("--alternative must be two-sided, greater or less")
    if markers not in ("corrected", "raw"):
        raise KyokanError("--markers must be corrected or raw")
    if effect not in EFFECTS:
        raise KyokanError(f"--effect must be one of {', '.join(EFFECTS)}")
    if not TESTS[test].resampling and (resamples is not None or exact is not None):
        raise KyokanError(f"--resamples/--exact apply to permutation tests, not --test {test}")
    if resamples is not None and resamples < 1:
        raise KyokanError("--resamples must be at least 1")
    if pairs is not None and order is not None:
        raise KyokanError("give either --order or --pairs, not both")
    if pairs is not None and alternative != "two-sided":
        raise KyokanError("--pairs carries each direction (A>B, A<B, A!=B); drop --alternative")
    if alternative != "two-sided" and order is None:
        raise KyokanError("a one-sided --alternative needs its direction fixed before looking at the data: "
                          "--order A,B,C (A > B > C hypothesised) or --pairs \"A>B,B>C\"")
    try:
        comps = parse_comparisons(pairs) if pairs is not None else None
    except ValueError as e:
        raise KyokanError(f"--pairs: {e}") from None
    groups: dict[str, dict[str, dict[str, float | None]]] = {}
    files: list[ScoreFile] = []
    for p in inputs:
        sf = load_scores(p, source_field=source_field, id_field=id_field)
        kinds = {f.kind for f in files} | {sf.kind}
        if len(kinds) > 1:
            raise KyokanError(f"{p}: holds {sf.kind} scores, the other inputs {sorted(kinds - {sf.kind})}: compare "
                              "like with like (one kind of score per run)")
        files.append(sf)
        for src, items in sf.groups.items():
            if src in groups:
                raise KyokanError(f"source {src!r} appears in more than one input file")
            groups[src] = items
    if len(groups) < 2:
        raise KyokanError(f"need at least two sources to compare, found {sorted(groups)}")
    mets = [m.strip() for m in metrics.split(",")] if metrics else metric_names(groups)
    if not mets:
        raise KyokanError("no metric is present in every source; pass --metrics")
    ordr = [s.strip() for s in order.split(",") if s.strip()] if order else None
    n_resamples = 9999 if resamples is None else resamples
    try:
        table, detail, results = pairwise_compare(
            groups, mets, test=test, alternative=alternative,  # type: ignore[arg-type]
            order=ordr, comparisons=comps, correction=correction, effect=effect, markers_on=markers,
            n_resamples=n_resamples, exact=exact, seed=seed)
    except ValueError as e:
        raise KyokanError(str(e)) from None
    hypotheses = list(dict.fromkeys(r["hypothesis"] for r in results))
    if output is not None:
        table.write(output)
        detail.write(output)
        config = {"inputs": [str(p) for p in inputs], "metrics": mets, "test": test, "alternative": alternative,
                  "order": ordr, "pairs": pairs, "hypotheses": hypotheses, "effect": effect,
                  "correction": correction, "markers": markers}
        if TESTS[test].resampling:
            config.update(n_resamples=n_resamples, exact=exact)
        write_record(output / "compare.json", CompareResult(
            inputs=[CompareInput(path=f.path, kind=f.kind, sources=f.sources) for f in files], settings=config,
            tests=results, hypotheses=hypotheses, caption=table.caption, notes=table.notes,
            provenance=provenance("kyokan stats compare", config, seed)))
    if json_:
        print_json(results)
        return
    print_text(table.to_markdown())
    if output is not None:
        out.print(f"tables → {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")
