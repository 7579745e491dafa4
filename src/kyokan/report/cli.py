"""`kyokan report RUN_DIR -o report.html`."""

from __future__ import annotations

from pathlib import Path

import typer

from kyokan.console import out, print_json


def report_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory (runs/<name>/ with stage folders)."),
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="HTML file to write."),
    tables: Path = typer.Option(None, "--tables", help="Folder for the tables as CSV + Markdown (default: <output stem>_tables/)."),
    title: str = typer.Option(None, "--title", help="Report title."),
    json_: bool = typer.Option(False, "--json", help="Print what was built and what was missing as JSON."),
) -> None:
    """One self-contained HTML report (tables shaped like EmplifAI Tables 2, 4, 5 and EmPO Tables
    2–5, 7, plots, provenance); stages the run lacks are named in the report, not errors.

    Example: kyokan report runs/demo -o runs/demo/report.html
    """
    from kyokan.report.html import build_report

    res = build_report(run_dir, output, tables, title)
    if json_:
        print_json(res)
        return
    out.print(f"report → {res['report']} ({len(res['built'])} tables/plots; tables as CSV/Markdown in {res['tables_dir']})",
              markup=False, soft_wrap=True)
    for k, v in res["missing"].items():
        out.print(f"  not available: {k} — {v}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
