"""Runs the configured stages in a run directory, skipping stages whose inputs and settings have
not changed, and resuming a killed run.

Layout: ``<run.out>/<run.name>/<stage>/…`` — each stage folder holds its outputs, ``stage.json``
(fingerprint, status, timings, outputs) and ``provenance.json`` (its config, seeds, model ids,
package versions). A stage's fingerprint hashes its settings, the seed and language it uses and
the fingerprints of the stages it reads, so changing anything upstream re-runs everything
downstream — and two runs whose stage has the same fingerprint would compute the same thing.

With a **stage store** (``kyokan sweep``), a stage lives in ``<store>/<stage>/<fingerprint>/`` and
the run directory's ``<stage>`` is a relative symlink to it: runs of a sweep that agree on a
stage share one copy (computed once, under a file lock when runs go in parallel).
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyokan import __version__
from kyokan.errors import KyokanError
from kyokan.io import write_json
from kyokan.pipeline.config import STAGES, RunConfig
from kyokan.provenance import package_versions, sha256_tree, stable_hash


@dataclass
class StageContext:
    cfg: RunConfig
    config_path: Path
    run_dir: Path
    stage: str
    #: called by long stages to report progress: (completed, total, description)
    progress: Callable[[int, int | None, str], None] = lambda done, total, desc: None
    #: extra provenance the stage adds (resolved paths, settings, …)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: this stage's fingerprint (names things that belong to this exact computation, e.g. tracker runs)
    fingerprint: str = ""
    #: the models the stage really ran and the lexicons its metrics loaded (kyokan.records)
    models: list[Any] = field(default_factory=list)
    lexicons: list[Any] = field(default_factory=list)

    def used_model(self, role: str, spec: str, *, label: str | None = None, adapter: str | None = None,
                   stand_in: bool = False, info: dict[str, Any] | None = None) -> None:
        from kyokan.records import ModelUse

        self.models.append(ModelUse(role=role, spec=spec, label=label, adapter=adapter, stand_in=stand_in,
                                    info=info or {}))

    @property
    def dir(self) -> Path:
        d = self.stage_dir(self.stage)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def stage_dir(self, stage: str) -> Path:
        """A stage's folder; a shared (store) stage by its real path, so every path a stage
        records is the same whichever run of a sweep computed it."""
        d = self.run_dir / stage
        return d.resolve() if d.is_symlink() else d

    def has(self, stage: str) -> bool:
        return _read_state(self.stage_dir(stage)).get("status") == "complete"

    @property
    def seed(self) -> int:
        return self.cfg.run.seed


StageFn = Callable[[StageContext], dict[str, Any]]


@dataclass(frozen=True)
class StageSpec:
    name: str
    fn: StageFn
    #: stages whose outputs this one reads (when they are part of the run)
    needs: tuple[str, ...]
    #: a short description for the progress display
    title: str
    #: whether the stage uses a seed (its section's ``seed`` or ``run.seed``); part of its fingerprint
    seeded: bool = True


REGISTRY: dict[str, StageSpec] = {}


def stage(name: str, needs: tuple[str, ...] = (), title: str = "", seeded: bool = True) -> Callable[[StageFn], StageFn]:
    """Register a stage implementation (see ``kyokan.pipeline.stages``)."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name}")

    def deco(fn: StageFn) -> StageFn:
        REGISTRY[name] = StageSpec(name, fn, needs, title or name, seeded)
        return fn

    return deco


def _read_state(d: Path) -> dict[str, Any]:
    """The stage's state; {} when it has none (files a user put there), and a state that matches
    no fingerprint when stage.json is unreadable or from another kyokan version (so it reruns)."""
    from kyokan.errors import InputError
    from kyokan.records import StageState, read_record

    if not (d / "stage.json").is_file():
        return {}
    try:
        return read_record(d / "stage.json", StageState).model_dump()
    except InputError:
        return {"fingerprint": "unreadable", "status": "unknown"}


def _clear(d: Path) -> None:
    import shutil

    if d.is_dir():
        shutil.rmtree(d)


def _quiet_libraries() -> None:
    """One progress display: the libraries' own bars and deprecation chatter would bury it."""
    import os

    from kyokan.quiet import configure

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    configure()


#: settings of a training stage's options that change no result (tracking, logging)
UNFINGERPRINTED_OPTIONS = ("report_to", "run_name", "logging_steps", "save_total_limit")


def tracker_run_name(stage: str, fingerprint: str) -> str:
    """The experiment tracker's run name of a training stage: one per distinct computation, so
    a stage shared by several runs of a sweep is one tracker run."""
    return f"kyokan-{stage}-{fingerprint}"


class Runner:
    def __init__(self, cfg: RunConfig, config_path: Path, *, out: Path | None = None,
                 store: Path | None = None) -> None:
        from kyokan.pipeline import stages as _stages  # noqa: F401  (registers the stage functions)

        self.cfg = cfg
        self.config_path = config_path
        root = Path(out) if out is not None else Path(cfg.run.out)
        if not root.is_absolute() and out is None:
            root = Path.cwd() / root
        self.run_dir = root / cfg.run.name
        #: shared stage folders keyed by fingerprint (None: every stage in the run directory)
        self.store = Path(store).absolute() if store is not None else None
        self.fingerprints: dict[str, str] = {}

    def stage_seed(self, name: str) -> int | None:
        """The seed a stage really uses: its section's ``seed``, else ``run.seed``; None for the
        stages that draw nothing."""
        spec = REGISTRY.get(name)
        if spec is not None and not spec.seeded:
            return None
        sec = self.cfg.section(name)
        own = getattr(sec, "seed", None) if sec is not None else None
        return own if own is not None else self.cfg.run.seed

    def plan_fingerprints(self, plan: list[str] | None = None) -> dict[str, str]:
        """Every planned stage's fingerprint, in order, without running anything."""
        for name in plan or self.plan():
            self.fingerprints[name] = self.fingerprint(name)
        return dict(self.fingerprints)

    def store_dir(self, name: str, fp: str) -> Path:
        assert self.store is not None
        return self.store / name / fp

    def _link(self, name: str, fp: str) -> Path:
        """Point ``run_dir/<name>`` at the store folder of this fingerprint; returns that folder."""
        import os

        target = self.store_dir(name, fp)
        target.mkdir(parents=True, exist_ok=True)
        link = self.run_dir / name
        rel = os.path.relpath(target, self.run_dir)
        if link.is_symlink():
            if os.readlink(link) == rel:
                return target
            link.unlink()
        elif link.is_dir():
            # a stage computed before this run used the store: adopt it when it is this computation
            if _read_state(link).get("fingerprint") == fp and _read_state(target) == {}:
                import shutil

                shutil.rmtree(target)
                link.rename(target)
            else:
                _clear(link)
        tmp = link.with_name(f".{name}.link")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(rel, target_is_directory=True)
        tmp.replace(link)
        return target

    def plan(self, from_stage: str | None = None, only: str | None = None) -> list[str]:
        stages = self.cfg.stages()
        for s in (from_stage, only):
            if s is not None and s not in stages:
                raise KyokanError(f"stage {s!r} is not part of this run; its stages are: {', '.join(stages)}")
        if only:
            return [only]
        return stages

    def fingerprint(self, name: str) -> str:
        spec = REGISTRY[name]
        section = self.cfg.section(name)
        ups: dict[str, Any] = {}
        for n in spec.needs:
            if n in self.fingerprints:
                ups[n] = self.fingerprints[n]
            elif (self.run_dir / n / "stage.json").exists():
                ups[n] = _read_state(self.run_dir / n).get("fingerprint")
        sec: dict[str, Any] | None = section.model_dump(mode="json") if section is not None else None
        if sec is not None:
            # the seed enters as the one the stage uses (below), whether set here or by run.seed
            sec.pop("seed", None)
            if isinstance(sec.get("options"), dict):
                sec["options"] = {k: v for k, v in sec["options"].items() if k not in UNFINGERPRINTED_OPTIONS}
        payload = {
            "stage": name,
            "section": sec,
            "run": {"seed": self.stage_seed(name), "lang": self.cfg.run.lang},
            "needs": ups,
            "kyokan": __version__,
        }
        if name == "validate":
            from kyokan.pipeline.stages import resolve_data_path

            payload["data_sha256"] = sha256_tree(resolve_data_path(self.cfg.data.path, self.config_path))
        return stable_hash(payload)

    def run(self, *, from_stage: str | None = None, only: str | None = None,
            console: Any = None) -> dict[str, dict[str, Any]]:
        _quiet_libraries()
        plan = self.plan(from_stage, only)
        forced = set(plan[plan.index(from_stage):]) if from_stage else ({only} if only else set())
        if forced and self.store is not None:
            raise KyokanError("--from/--only cannot force a stage that other runs share; change its settings instead")
        if "validate" in plan:
            # inputs before outputs: a missing data file must not leave a run folder behind
            from kyokan.pipeline.stages import resolve_data_path

            resolve_data_path(self.cfg.data.path, self.config_path)
        fresh = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[str, Any]] = {}
        try:
            self._run_plan(plan, forced, results, console)
        except KyokanError:
            if fresh and self.store is None and not results:
                # bad input in the first stage (e.g. invalid records): nothing of this run exists yet
                import shutil

                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        return results

    def _write_config(self) -> None:
        write_json(self.run_dir / "config.json", {"config_path": str(self.config_path),
                                                  "config": self.cfg.model_dump(mode="json")})

    def _run_plan(self, plan: list[str], forced: set[str], results: dict[str, dict[str, Any]], console: Any) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as prog:
            overall = prog.add_task(f"run {self.cfg.run.name}", total=len(plan))
            for name in plan:
                spec = REGISTRY.get(name)
                if spec is None:
                    raise KyokanError(f"stage {name!r} has no implementation in this kyokan version")
                fp = self.fingerprint(name)
                self.fingerprints[name] = fp
                if self.store is None:
                    results[name] = self._run_stage(spec, fp, self.run_dir / name, name in forced, prog)
                else:
                    from kyokan.io import file_lock

                    d = self._link(name, fp)
                    # another run of the sweep may be computing this very stage: wait for it, then
                    # find it complete (cached) or take over a killed attempt (resume)
                    with file_lock(d.with_name(d.name + ".lock")):
                        results[name] = self._run_stage(spec, fp, d, False, prog)
                if len(results) == 1:
                    self._write_config()  # after the first stage: its inputs were good
                prog.advance(overall)

    def _run_stage(self, spec: StageSpec, fp: str, d: Path, forced: bool, prog: Any) -> dict[str, Any]:
        from kyokan.records import StageProvenance, StageState, write_record

        name = spec.name
        state = _read_state(d)
        if not forced and state.get("status") == "complete" and state.get("fingerprint") == fp:
            prog.console.print(f"[dim]✓ {name}: cached[/]")
            return {**state.get("outputs", {}), "cached": True}
        if (state.get("fingerprint") not in (None, fp)) or forced:
            # settings or inputs changed: stale outputs must not leak into the new run.
            # Same fingerprint but unfinished = a killed run, whose files let it resume;
            # no stage.json at all = files a user put there (e.g. a training run made
            # under `accelerate launch`), which the stage itself checks and reuses.
            _clear(d)
        task = prog.add_task(f"  {spec.title}", total=None)

        def report(done: int, total: int | None, desc: str, _task: Any = task, _title: str = spec.title) -> None:
            prog.update(_task, completed=done, total=total, description=f"  {_title}: {desc}" if desc else f"  {_title}")

        ctx = StageContext(self.cfg, self.config_path, self.run_dir, name, progress=report, fingerprint=fp)
        d.mkdir(parents=True, exist_ok=True)
        started = time.time()
        write_record(d / "stage.json", StageState(stage=name, fingerprint=fp, status="running", started=started))
        outputs = spec.fn(ctx)
        seconds = round(time.time() - started, 2)
        section = self.cfg.section(name)
        write_record(d / "provenance.json", StageProvenance(
            stage=name, config=section.model_dump(mode="json") if section is not None else None,
            seed=self.stage_seed(name), lang=self.cfg.run.lang, fingerprint=fp, config_path=str(self.config_path),
            models=ctx.models, lexicons=ctx.lexicons, packages=package_versions(missing=True),
            python=sys.version.split()[0], platform=platform.platform(), **ctx.provenance))
        write_record(d / "stage.json", StageState(stage=name, fingerprint=fp, status="complete", started=started,
                                                  seconds=seconds, outputs=outputs))
        prog.update(task, completed=1, total=1, description=f"  {spec.title} ({seconds:.1f} s)")
        return outputs
