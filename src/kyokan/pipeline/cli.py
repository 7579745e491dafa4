"""`kyokan run CONFIG.toml` and `kyokan demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from kyokan.console import out


def run_cmd(
    config: Path = typer.Argument(..., help="Run configuration (TOML)."),
    from_stage: str = typer.Option(None, "--from", help="Re-run this stage and every later one."),
    only: str = typer.Option(None, "--only", help="Run just this stage (its inputs must exist)."),
    out_dir: Path = typer.Option(None, "--out", help="Parent folder of the run directory (default: run.out)."),
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
    out_dir: Path = typer.Option(Path("runs"), "--out", help="Parent folder of the demo run directory."),
    from_stage: str = typer.Option(None, "--from", help="Re-run this stage and every later one."),
) -> None:
    """The embedded demo: `kyokan run examples/demo.toml` on the bundled Japanese sample with
    packaged models (Gemma 3 270M through SFT → DPO on CPU, a packaged stand-in judge).

    Example: kyokan demo --out runs
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


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("demo")(demo_cmd)
