"""``kyokan sweep CONFIG -o OUT``: seeds × a grid of overrides as runs that share stages.

A ``[sweep]`` table in a run config expands to one run per (grid point, seed). Every run is a
normal run directory (``OUT/runs/<point>/``), but its stage folders are symlinks into a stage
store keyed by fingerprint (``OUT/stages/<stage>/<fingerprint>/``, see
:class:`kyokan.pipeline.runner.Runner`): runs that agree on a stage — same settings, same seed
where the stage uses one, same upstream — share one computation. The sweep's own state is
``OUT/sweep.json`` (the plan, each run's status, exit code, log, seconds and tracker runs);
each run's output goes to ``OUT/runs/<point>/run.log``.

Launchers run the runs; kyokan schedules nothing itself: ``local`` runs them one after another
(each in its own process, so a crash or out-of-memory ends that run only), ``submitit`` hands
them to SLURM (or submitit's local executor) as one job each. A run's command is always the same
``python -m kyokan sweep CONFIG -o OUT --point NAME``, so a rerun of the sweep continues where it
stopped: finished runs are skipped, a killed one resumes (its stages from the store, a killed
training stage from its checkpoint).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, KyokanError, Problem
from kyokan.io import write_json
from kyokan.pipeline.config import RunConfig, SweepSection, load_config


class SweepFailed(KyokanError):
    """Some runs of a sweep failed (they are listed; the aggregate leaves them out)."""

    exit_code = 1


MANIFEST = "sweep.json"
MANIFEST_KIND = "kyokan.sweep"
MANIFEST_VERSION = 1


@dataclass
class SweepPoint:
    """One run of the sweep: a grid point (``config``) repeated with one seed."""

    name: str
    #: the grid point's name, shared by its seeds (the unit the spread over seeds is taken in)
    config: str
    #: the grid point's overrides (dotted keys), without the seed
    overrides: dict[str, Any]
    seed: int
    cfg: RunConfig
    #: every stage of the run → its fingerprint
    fingerprints: dict[str, str] = field(default_factory=dict)


@dataclass
class SweepPlan:
    config_path: Path
    out: Path
    sweep: SweepSection
    base: RunConfig
    points: list[SweepPoint]
    #: extra --set overrides given on the command line (passed on to each run's process)
    sets: dict[str, Any] = field(default_factory=dict)
    share: bool = True

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    @property
    def store(self) -> Path:
        return self.out / "stages"

    def point(self, name: str) -> SweepPoint:
        for p in self.points:
            if p.name == name:
                return p
        raise KyokanError(f"no sweep point {name!r}; points: {', '.join(p.name for p in self.points)}")

    def reuse(self) -> list[dict[str, Any]]:
        """Per run, in launch order: stages it takes from an earlier run of the sweep or from a
        finished store entry (``reused``), and the ones it computes (``computes``)."""
        seen: set[tuple[str, str]] = set()
        out = []
        for p in self.points:
            reused, computes, done = [], [], []
            for stage, fp in p.fingerprints.items():
                key = (stage, fp)
                complete = self.share and _stage_complete(self.store / stage / fp, fp)
                if self.share and (key in seen or complete):
                    reused.append(stage)
                    if complete:
                        done.append(stage)
                else:
                    computes.append(stage)
                if self.share:
                    seen.add(key)
            out.append({"point": p.name, "reused": reused, "computes": computes, "finished": done})
        return out


def _stage_complete(d: Path, fp: str) -> bool:
    try:
        st = json.loads((d / "stage.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(st.get("status") == "complete" and st.get("fingerprint") == fp)


def _leaves(obj: dict[str, Any], prefix: str = "", *, lists: bool) -> dict[str, Any]:
    """Dotted keys of nested tables (TOML ``a.b.c = …`` nests); with ``lists`` a leaf is the first
    list met (a grid's values), else any non-table value."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and not (lists and not v):
            out.update(_leaves(v, key, lists=lists))
        else:
            out[key] = v
    return out


def _value_name(v: Any) -> str:
    if isinstance(v, float):
        s = f"{v:g}"
    elif isinstance(v, (list, tuple)):
        s = "+".join(_value_name(x) for x in v)
    else:
        s = str(v)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", s).strip("-") or "x"


def _short_keys(keys: list[str]) -> dict[str, str]:
    """The shortest unambiguous tail of each dotted key (``sft.options.lora_alpha`` → ``lora_alpha``)."""
    out: dict[str, str] = {}
    for k in keys:
        parts = k.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if sum(1 for o in keys if o == tail or o.endswith("." + tail)) == 1:
                out[k] = tail.replace(".", "-")
                break
        else:
            out[k] = k.replace(".", "-")
    return out


def grid_points(sweep: SweepSection, where: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(name or None, overrides) of every grid point: explicit ``points`` × the ``grid`` product."""
    grid = _leaves(sweep.grid, lists=True)
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise InputError.at(where, None, f"sweep.grid.{k}", "expected a non-empty list of values")
    combos = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())] if grid else [{}]
    bases: list[tuple[str | None, dict[str, Any]]] = []
    for i, pt in enumerate(sweep.points or [{}]):
        flat = _leaves(pt, lists=False)
        name = flat.pop("name", None)
        if name is not None and not re.fullmatch(r"[A-Za-z0-9._+-]+", str(name)):
            raise InputError.at(where, None, f"sweep.points[{i}].name", "use letters, digits and . _ + - only")
        bases.append((str(name) if name is not None else None, flat))
    out: list[tuple[str | None, dict[str, Any]]] = []
    for name, flat in bases:
        for combo in combos:
            clash = set(flat) & set(combo)
            if clash:
                raise InputError.at(where, None, "sweep", f"{', '.join(sorted(clash))} is set by both points and grid")
            out.append((name, {**flat, **combo}))
    return out


def expand(config_path: str | Path, sets: dict[str, Any] | None = None, *, out: Path | None = None,
           share: bool = True) -> SweepPlan:
    """The sweep's runs, each a validated RunConfig with its stage fingerprints."""
    from kyokan.pipeline.runner import Runner

    path = Path(config_path)
    base = load_config(path, sets)
    if base.sweep is None:
        raise InputError.at(str(path), None, "sweep", "missing: a sweep config needs a [sweep] table")
    sw = base.sweep
    seeds = sw.seeds if sw.seeds else [base.run.seed]
    if len(set(seeds)) != len(seeds):
        raise InputError.at(str(path), None, "sweep.seeds", "a seed is listed twice")
    points_in = grid_points(sw, str(path))
    keys = sorted({k for _, o in points_in for k in o})
    for k in keys:
        if k == "run.seed" or k.startswith("sweep"):
            raise InputError.at(str(path), None, f"sweep.grid.{k}", "sweep seeds with sweep.seeds; a sweep cannot sweep itself")
    short = _short_keys(keys)
    root = out if out is not None else Path.cwd() / base.run.out / (sw.name or base.run.name)
    root = Path(root).absolute()
    points: list[SweepPoint] = []
    names: set[str] = set()
    for given, over in points_in:
        cname = given or ("_".join(f"{short[k]}-{_value_name(v)}" for k, v in sorted(over.items())) or "base")
        for seed in seeds:
            name = f"{cname}_seed-{seed}"
            if name in names:
                raise InputError.at(str(path), None, "sweep", f"two points are both named {name!r}; name them (points = [{{ name = … }}])")
            names.add(name)
            pins: dict[str, Any] = {"run.seed": seed, "run.name": name}
            for st in sw.keep_seed:
                sec = base.section(st)
                if sec is not None and getattr(sec, "seed", None) is None:
                    pins[f"{st}.seed"] = base.run.seed
            try:
                cfg = load_config(path, {**(sets or {}), **over, **pins})
            except InputError as e:
                raise InputError([Problem(p.path, p.line, p.field, f"{p.message} (sweep point {name})")
                                  for p in e.problems]) from None
            cfg = cfg.model_copy(update={"sweep": None})
            _check_train_options(cfg, str(path), name)
            runner = Runner(cfg, path.resolve(), out=root / "runs", store=(root / "stages") if share else None)
            pt = SweepPoint(name, cname, over, seed, cfg)
            pt.fingerprints = runner.plan_fingerprints()
            points.append(pt)
    return SweepPlan(path.resolve(), root, sw, base, points, dict(sets or {}), share)


def _check_train_options(cfg: RunConfig, where: str, point: str) -> None:
    """A typo in ``sft/dpo.options`` is caught when planning, not hours later when training starts."""
    from kyokan.train.config import _normalise

    for st in ("sft", "dpo"):
        sec = cfg.section(st)
        if sec is not None:
            try:
                _normalise(dict(getattr(sec, "options", {})), f"{st}.options")
            except KyokanError as e:
                raise InputError.at(where, None, f"{st}.options", f"{e} (sweep point {point})") from None


# --- the manifest -----------------------------------------------------------------------------

def read_manifest(out: Path) -> dict[str, Any]:
    try:
        m = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return m if isinstance(m, dict) and m.get("kind") == MANIFEST_KIND else {}


def tracker_runs(p: SweepPoint) -> dict[str, str]:
    from kyokan.pipeline.runner import tracker_run_name

    return {st: tracker_run_name(st, fp) for st, fp in p.fingerprints.items() if st in ("sft", "dpo")}


def write_manifest(plan: SweepPlan, runs: dict[str, dict[str, Any]]) -> None:
    reuse = {r["point"]: r for r in plan.reuse()}
    write_json(plan.out / MANIFEST, {
        "kind": MANIFEST_KIND, "version": MANIFEST_VERSION, "config_path": str(plan.config_path),
        "name": plan.sweep.name or plan.base.run.name, "share_stages": plan.share,
        "launcher": plan.sweep.launcher, "seeds": sorted({p.seed for p in plan.points}),
        "grid": _grid_values(plan),
        "report_to": plan.base.run.report_to,
        "points": [{
            "name": p.name, "config": p.config, "overrides": p.overrides, "seed": p.seed,
            "run_dir": str(plan.runs_dir / p.name), "fingerprints": p.fingerprints,
            "reused_stages": reuse[p.name]["reused"],
            # which experiment-tracker runs hold this point's training curves (shared stages: shared runs)
            "tracker_runs": tracker_runs(p) if plan.base.run.report_to not in ("none", [], ["none"]) else {},
            **runs.get(p.name, {"status": "pending"}),
        } for p in plan.points],
    })


def _grid_values(plan: SweepPlan) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in plan.points:
        for k, v in p.overrides.items():
            if v not in out.setdefault(k, []):
                out[k].append(v)
    return dict(sorted(out.items()))


def point_done(plan: SweepPlan, p: SweepPoint) -> bool:
    """Every stage of the run finished with the planned fingerprint (nothing to launch)."""
    run = plan.runs_dir / p.name
    for stage, fp in p.fingerprints.items():
        d = (plan.store / stage / fp) if plan.share else (run / stage)
        if not _stage_complete(d, fp):
            return False
        if plan.share and not (run / stage).is_symlink():
            return False
    return True


# --- running ----------------------------------------------------------------------------------

def point_command(plan: SweepPlan, p: SweepPoint) -> list[str]:
    cmd = [sys.executable, "-m", "kyokan", "sweep", str(plan.config_path), "-o", str(plan.out), "--point", p.name]
    if not plan.share:
        cmd.append("--no-share")
    for k, v in plan.sets.items():
        cmd += ["--set", f"{k}={toml_value(v)}"]
    return cmd


def toml_value(v: Any) -> str:
    """A value as TOML text, the way ``--set KEY=VALUE`` reads it back."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise KyokanError(f"--set: cannot pass {v!r} on to the runs")


def run_point_process(cmd: list[str], log: str) -> int:
    """Run one point's command with its output appended to its log; returns the exit code.
    (A top-level function: submitit pickles it into the job.)"""
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} launch: {' '.join(cmd)}\n")
        f.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": os.environ.get("COLUMNS", "120")}
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
        f.write(f"=== exit {r.returncode}\n")
    return r.returncode


def run_one(plan: SweepPlan, name: str, console: Any = None) -> None:
    """The body of ``--point NAME``: one run, its stages through the store."""
    from kyokan.pipeline.runner import Runner

    p = plan.point(name)
    runner = Runner(p.cfg, plan.config_path, out=plan.runs_dir, store=plan.store if plan.share else None)
    runner.run(console=console)


def _launch_local(plan: SweepPlan, todo: list[SweepPoint], runs: dict[str, dict[str, Any]], say: Any) -> None:
    for p in todo:
        log = plan.runs_dir / p.name / "run.log"
        runs[p.name] = {"status": "running", "log": str(log), "started": time.time()}
        write_manifest(plan, runs)
        say(f"[bold]▶ {p.name}[/] (log: {log})")
        t0 = time.time()
        code = run_point_process(point_command(plan, p), str(log))
        runs[p.name] = {"status": "complete" if code == 0 else "failed", "exit_code": code, "log": str(log),
                        "seconds": round(time.time() - t0, 1), "launches": _launches(log)}
        say(f"  {'✓' if code == 0 else '✗'} {p.name}: {runs[p.name]['status']} ({runs[p.name]['seconds']} s)"
            + ("" if code == 0 else f", exit {code} — see {log}"))
        write_manifest(plan, runs)


def _launch_submitit(plan: SweepPlan, todo: list[SweepPoint], runs: dict[str, dict[str, Any]], say: Any) -> None:
    try:
        import submitit
    except ImportError:
        raise KyokanError("sweep.launcher = \"submitit\" needs the submitit package (pip install kyokan[sweep])") from None
    params = dict(plan.sweep.submitit)
    cluster = params.pop("cluster", None)
    folder = plan.out / "submitit"
    ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=cluster)
    params.setdefault("name", f"kyokan-sweep-{plan.sweep.name or plan.base.run.name}")
    ex.update_parameters(**params)
    jobs: list[tuple[SweepPoint, Any, str, float]] = []
    for p in todo:
        log = str(plan.runs_dir / p.name / "run.log")
        job = ex.submit(run_point_process, point_command(plan, p), log)
        jobs.append((p, job, log, time.time()))
        runs[p.name] = {"status": "submitted", "job_id": str(job.job_id), "log": log}
        say(f"[bold]▶ {p.name}[/]: job {job.job_id} (log: {log})")
    write_manifest(plan, runs)
    for p, job, log, t0 in jobs:
        try:
            code = int(job.result())
            err = None
        except Exception as e:  # the job itself failed (node lost, time limit, cancelled): report it
            code, err = -1, f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        rec: dict[str, Any] = {"status": "complete" if code == 0 else "failed", "exit_code": code, "log": log,
                               "job_id": str(job.job_id), "seconds": round(time.time() - t0, 1),
                               "job_stdout": str(job.paths.stdout), "job_stderr": str(job.paths.stderr),
                               "launches": _launches(Path(log))}
        if err:
            rec["error"] = err
        runs[p.name] = rec
        say(f"  {'✓' if code == 0 else '✗'} {p.name}: {rec['status']}" + ("" if code == 0 else f" — see {log}"))
        write_manifest(plan, runs)


def _launches(log: Path) -> int:
    try:
        return sum(1 for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
                   if line.startswith("=== ") and " launch: " in line)
    except OSError:
        return 0


def run_sweep(plan: SweepPlan, say: Any = print) -> dict[str, dict[str, Any]]:
    """Launch every run not finished yet; returns each run's status record."""
    plan.out.mkdir(parents=True, exist_ok=True)
    old = {p.get("name"): p for p in read_manifest(plan.out).get("points", [])}
    runs: dict[str, dict[str, Any]] = {}
    todo: list[SweepPoint] = []
    for p in plan.points:
        if point_done(plan, p):
            prev = old.get(p.name, {})
            keep = {k: prev[k] for k in ("exit_code", "log", "seconds", "job_id", "launches") if k in prev}
            runs[p.name] = {**keep, "status": "complete"}
            say(f"[dim]✓ {p.name}: complete, not run again[/]")
        else:
            todo.append(p)
    write_manifest(plan, runs)
    if plan.sweep.launcher == "submitit":
        _launch_submitit(plan, todo, runs, say)
    else:
        _launch_local(plan, todo, runs, say)
    return runs


def describe(plan: SweepPlan) -> list[list[str]]:
    """The --dry-run table: run, grid point, seed, stages reused / computed."""
    rows = []
    done = {p.name for p in plan.points if point_done(plan, p)}
    for p, r in zip(plan.points, plan.reuse(), strict=True):
        over = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(p.overrides.items())) or "(base config)"
        rows.append([p.name, over, str(p.seed), f"{len(r['reused'])}/{len(p.fingerprints)}",
                     ", ".join(r["computes"]) or "—", "finished" if p.name in done else "to run"])
    return rows
