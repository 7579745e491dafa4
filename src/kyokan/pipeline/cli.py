"""`kyokan run CONFIG.toml` and `kyokan demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from kyokan.console import out


def run_cmd(
    config: Path = typer.Argument(..., help="Run configuration (TOML)."),
    from_stage: str = typer.Option(None, "--from", help="Re-run this stage and every later one."),
    only: str = typer.Option(None, "--only", help="Run just this stage (its inputs must exist)."),
    out_dir: Path = typer.Option(None, "-o", "--output", "--out", help="Parent folder of the run directory (default: run.out)."),
    set_: list[str] = typer.Option(None, "--set", help="Override a config key: --set sample.n=10"),
) -> None:
    """Run the stages a config names, in a run directory; unchanged stages are skipped.

    Example: kyokan run examples/demo.toml
    Example: kyokan run examples/emplifai.toml --from judge
    """
    from kyokan.pipeline.config import load_config
    from kyokan.pipeline.runner import Runner

    overrides = _parse_sets(set_ or [])
    cfg = load_config(config, overrides)
    runner = Runner(cfg, config.resolve(), out=out_dir)
    runner.run(from_stage=from_stage, only=only, console=out)
    rep = runner.run_dir / "report" / "report.html"
    out.print(f"run directory: {runner.run_dir}")
    if rep.exists():
        out.print(f"report: {rep}")


def _parse_sets(items: list[str]) -> dict[str, object]:
    import tomllib

    from kyokan.errors import KyokanError

    res: dict[str, object] = {}
    for it in items:
        if "=" not in it:
            raise KyokanError(f"--set {it!r}: expected KEY=VALUE")
        k, v = it.split("=", 1)
        try:
            res[k.strip()] = tomllib.loads(f"x = {v}")["x"]
        except tomllib.TOMLDecodeError:
            res[k.strip()] = v
    return res


def demo_cmd(
    out_dir: Path = typer.Option(Path("runs"), "-o", "--output", "--out", help="Parent folder of the demo run directory."),
    from_stage: str = typer.Option(None, "--from", help="Re-run this stage and every later one."),
) -> None:
    """The embedded demo: `kyokan run examples/demo.toml` on the bundled Japanese sample with
    packaged models (Gemma 3 270M through SFT → DPO on CPU, a packaged stand-in judge).

    Example: kyokan demo -o runs
    """
    from kyokan.pipeline.config import load_config
    from kyokan.pipeline.runner import Runner
    from kyokan.pipeline.stages import demo_config_path

    path = demo_config_path()
    cfg = load_config(path)
    runner = Runner(cfg, path, out=out_dir)
    runner.run(from_stage=from_stage, console=out)
    out.print(f"run directory: {runner.run_dir}")
    rep = runner.run_dir / "report" / "report.html"
    if rep.exists():
        out.print(f"report: {rep}")


def sweep_cmd(
    config: Path = typer.Argument(..., help="Run configuration with a \\[sweep] table (TOML)."),
    out_dir: Path = typer.Option(None, "-o", "--output", "--out", help="Sweep folder (default: run.out/<sweep name>)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the runs and the stages each reuses; run nothing."),
    set_: list[str] = typer.Option(None, "--set", help="Override a config key for every run: --set sample.n=10"),
    no_share: bool = typer.Option(False, "--no-share", help="Every run computes all its stages (no shared stage store)."),
    aggregate_only: bool = typer.Option(False, "--aggregate-only", help="Only rebuild the tables and figures from finished runs."),
    point: str = typer.Option(None, "--point", hidden=True, help="Run one point (what the launchers call)."),
) -> None:
    """Seeds × a grid of overrides as runs that share every stage with the same fingerprint;
    then mean ± SD over seeds per system and metric, tests between systems, figures (HTML + CSV).

    Example: kyokan sweep examples/sweep_cpu.toml --dry-run
    Example: kyokan sweep examples/sweep_cpu.toml -o runs/sweep_cpu
    """
    from kyokan.pipeline.sweep import describe, expand, run_one, run_sweep

    plan = expand(config, _parse_sets(set_ or []), out=out_dir, share=not no_share)
    if point is not None:
        run_one(plan, point, console=out)
        return
    if dry_run:
        from rich.table import Table

        t = Table(title=f"sweep {plan.out}: {len(plan.points)} runs, launcher {plan.sweep.launcher}"
                  + ("" if plan.share else " (no stage sharing)"))
        for c in ("run", "overrides", "seed", "reused stages", "computes", "state"):
            t.add_column(c)
        for row in describe(plan):
            t.add_row(*row)
        out.print(t)
        distinct = {(s, fp) for p in plan.points for s, fp in p.fingerprints.items()}
        total = sum(len(p.fingerprints) for p in plan.points)
        out.print(f"{total} stage runs, {len(distinct) if plan.share else total} computed"
                  + (f" ({total - len(distinct)} shared)" if plan.share else ""))
        return
    from kyokan.pipeline.aggregate import aggregate
    from kyokan.pipeline.sweep import SweepFailed

    runs = {} if aggregate_only else run_sweep(plan, say=out.print)
    info = aggregate(plan)
    out.print(f"sweep folder: {plan.out}")
    out.print(f"aggregate: {info['html']}  (tables: {info['tables_dir']})")
    failed = [n for n, r in runs.items() if r.get("status") == "failed"]
    if failed:
        raise SweepFailed(f"{len(failed)} of {len(plan.points)} runs failed: {', '.join(failed)} "
                          f"(logs: {plan.runs_dir}/<run>/run.log); the aggregate leaves them out")


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("demo")(demo_cmd)
    app.command("sweep")(sweep_cmd)
