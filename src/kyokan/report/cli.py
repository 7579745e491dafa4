"""`kyokan report RUN_DIR -o report.html`."""

from __future__ import annotations

from pathlib import Path

import typer

from kyokan.console import err, out, print_json


def report_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory (runs/<name>/ with stage folders)."),
    output: Path = typer.Option(None, "-o", "--output", help="HTML file to write (default: RUN_DIR/report/report.html, where `kyokan run` and `kyokan demo` write theirs)."),
    tables: Path = typer.Option(None, "--tables", help="Folder for the tables as CSV + Markdown (default: beside the default report, RUN_DIR/report/tables/; with -o OUT.html, OUT_tables/)."),
    title: str = typer.Option(None, "--title", help="Report title."),
    reference: str = typer.Option(None, "--reference", help="Source EmPO Table 5 marks significance against (e.g. the "
                                                          "human replies); without it no marks."),
    order: str = typer.Option(None, "--order", help="Hypothesised order of the rated sources, best first (A,B,C): "
                                                  "Table 7's tests become one-sided in that direction; default two-sided."),
    seed: int = typer.Option(0, "--seed", help="Seed of the permutation tests."),
    resamples: int = typer.Option(9999, "--resamples", help="Resamples of the Table 5 permutation tests."),
    json_: bool = typer.Option(False, "--json", help="Print what was built and what was missing as JSON."),
) -> None:
    """One self-contained HTML report (tables shaped like EmplifAI Tables 2, 4, 5 and EmPO Tables
    2–5, 7, plots, provenance); stages the run lacks are named in the report, not errors.

    Example: kyokan report runs/demo
    Example: kyokan report runs/demo -o demo.html --tables demo_tables/
    """
    from kyokan.report.html import build_report
    from kyokan.report.tables import ReportOptions

    opts = ReportOptions(reference=reference, order=[s.strip() for s in order.split(",")] if order else None,
                         seed=seed, resamples=resamples)
    if output is None:
        output = run_dir / "report" / "report.html"
        tables = tables or run_dir / "report" / "tables"
    res = build_report(run_dir, output, tables, title, opts)
    if json_:
        print_json(res)
    else:
        out.print(f"report → {res['report']} ({len(res['built'])} tables/plots; tables as CSV/Markdown in "
                  f"{res['tables_dir']})", markup=False, soft_wrap=True)
        for k, v in res["missing"].items():
            out.print(f"  not available: {k} — {v}", markup=False, soft_wrap=True)
        for p in res["problems"]:
            err.print(f"  not read: {p}", markup=False, soft_wrap=True)
    for k, v in res["errors"].items():
        err.print(f"kyokan report: error in {k}: {v}", markup=False, soft_wrap=True)
    if res["errors"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
