"""The typed run configuration: one TOML file names the stages to run and their settings.

Errors name the config key and its line in the file (``demo.toml:14: train.sft.lr: …``), exit 2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kyokan.errors import InputError, Problem

STAGES = ("validate", "split", "sample", "prefs", "sft", "dpo", "generate", "eval_emotions",
          "eval_responses", "judge", "human", "report")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSection(_Section):
    name: str = "run"
    out: str = "runs"
    seed: int = 42
    lang: Literal["ja", "en"] = "ja"
    #: stages to run, in pipeline order; default: every stage that has a section
    stages: list[str] | None = None
    #: experiment tracking for the training stages: TRL's ``report_to`` ("none", "trackio",
    #: "wandb", "mlflow", … or a list); not part of any fingerprint (it changes no result)
    report_to: str | list[str] = "none"

    @field_validator("stages")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        for s in v or []:
            if s not in STAGES:
                raise ValueError(f"unknown stage {s!r}; stages are {', '.join(STAGES)}")
        return v


class DataSection(_Section):
    #: a path, or ``bundled:ja`` / ``bundled:ed-en`` for the bundled samples
    path: str
    format: str | None = None
    taxonomy: str = "goemotions28"


class SplitSection(_Section):
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int | None = None

    @field_validator("ratios")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(x < 0 for x in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"{', '.join(f'{x:g}' for x in v)} must be non-negative and sum to 1 (they sum to {sum(v):.6g})")
        return v


class SampleSection(_Section):
    n: int = Field(100, gt=0)
    seed: int | None = None
    stratify: bool = False
    #: which split to sample the evaluation pairs from (``all`` = the whole data)
    source: Literal["all", "train", "dev", "test"] = "test"


class PrefsSection(_Section):
    epochs: int = Field(3, gt=0)
    strategy: Literal["opposite", "same-situation", "model"] = "opposite"
    system_prompt: str | None = None
    model: str | None = None
    seed: int | None = None


class TrainSection(_Section):
    model: str
    preset: str | None = None
    #: any other option of the trainer's config (learning rate, steps, LoRA rank, …)
    options: dict[str, Any] = Field(default_factory=dict)


class GenerateSection(_Section):
    #: systems to compare: ``base``, ``sft``, ``dpo`` (the trained stages) or any model spec
    systems: list[str] = Field(default_factory=lambda: ["base", "sft", "dpo"])
    #: the base model when ``base`` is listed and there is no training stage
    model: str | None = None
    task: Literal["dialogue", "response"] = "dialogue"
    max_new_tokens: int = 200
    temperature: float = 0.0
    base_url: str | None = None
    concurrency: int = 4
    #: local models: conversations generated together (None: the backend's default)
    batch_size: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class EvalEmotionsSection(_Section):
    model: str
    base_url: str | None = None
    #: label this model as a stand-in in the report (a tiny model in place of the paper's)
    stand_in: bool = False
    concurrency: int = 4
    batch_size: int | None = None
    limit: int | None = None


class EvalResponsesSection(_Section):
    metrics: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class JudgeSection(_Section):
    model: str
    base_url: str | None = None
    all_in_one: bool = False
    concurrency: int = 4
    batch_size: int | None = None
    stand_in: bool = False
    rubric: str | None = None
    #: prompt language (default: run.lang); a small English model judges better with English instructions
    lang: Literal["ja", "en"] | None = None
    #: judge only the first N dialogues of each system (a CPU budget; None = all)
    limit: int | None = Field(None, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


class HumanSection(_Section):
    style: Literal["emplifai", "empo"] = "emplifai"
    options: dict[str, Any] = Field(default_factory=dict)


class ReportSection(_Section):
    title: str | None = None
    #: the source EmPO Table 5 marks significance against (e.g. the human replies)
    reference: str | None = None
    #: hypothesised order of rated sources, best first: one-sided tests in Table 7
    order: list[str] | None = None


#: stages whose section has its own ``seed`` (else they use ``run.seed``)
SEEDED_SECTIONS = ("split", "sample", "prefs")


class SweepTests(_Section):
    """Significance tests between systems in the aggregate (kyokan.stats)."""

    #: system pairs to test, [a, b] (labels as in the generate stage); default: every pair
    pairs: list[tuple[str, str]] | None = None
    #: two-sided unless a direction is stated; "greater" tests a > b for every listed pair,
    #: so a one-sided test needs ``pairs`` (the direction is fixed before seeing any result)
    alternative: Literal["two-sided", "greater", "less"] = "two-sided"
    resamples: int = Field(9999, gt=0)
    seed: int = 0

    @field_validator("alternative")
    @classmethod
    def _direction_needs_pairs(cls, v: str, info: Any) -> str:
        if v != "two-sided" and not info.data.get("pairs"):
            raise ValueError("a one-sided test needs sweep.tests.pairs (which system is expected higher)")
        return v


class SweepSection(_Section):
    """``kyokan sweep``: one run per (grid point × seed); runs share every stage whose
    fingerprint is the same."""

    #: folder name of the sweep (default: run.name)
    name: str | None = None
    #: the run seed of each repetition (training, pair draws, generation); default [run.seed]
    seeds: list[int] | None = None
    #: dotted config key → list of values; the runs are the cartesian product
    #: (``"sft.options.lora_alpha" = [16, 64]``, or nested: ``[sweep.grid.dpo.options] beta = [...]``)
    grid: dict[str, Any] = Field(default_factory=dict)
    #: explicit points instead of (or combined with) the grid: tables of dotted keys, optional ``name``
    points: list[dict[str, Any]] = Field(default_factory=list)
    #: stages that keep the base config's seed for every sweep seed, so every run is trained and
    #: scored on the same data split and evaluation sample (EmPO: 4 training runs, one test set)
    keep_seed: list[Literal["split", "sample", "prefs"]] = Field(default_factory=lambda: ["split", "sample"])  # type: ignore[arg-type]
    #: "local" (one run after another, default) or "submitit" (SLURM; or its local executor)
    launcher: Literal["local", "submitit"] = "local"
    #: submitit executor parameters: cluster = "slurm" | "local" | "debug", timeout_min,
    #: slurm_partition, gpus_per_node, cpus_per_task, mem_gb, slurm_array_parallelism, …
    submitit: dict[str, Any] = Field(default_factory=dict)
    #: the swept key on the figures' x axis (default: the first grid key)
    x: str | None = None
    #: metrics in the tables and figures (ids as in the aggregate, e.g. "length.chars",
    #: "judge.empathy"; prefix match); default: all
    metrics: list[str] | None = None
    #: the metric of the stability figure (EmPO Figure 3); default: DIFF-EPITOME's mean over ER/EX/IP
    #: when present, else the first metric
    stability_metric: str | None = None
    tests: SweepTests = Field(default_factory=SweepTests)  # type: ignore[arg-type]


class RunConfig(_Section):
    run: RunSection = Field(default_factory=RunSection)
    data: DataSection
    split: SplitSection | None = None
    sample: SampleSection | None = None
    prefs: PrefsSection | None = None
    sft: TrainSection | None = None
    dpo: TrainSection | None = None
    generate: GenerateSection | None = None
    eval_emotions: EvalEmotionsSection | None = None
    eval_responses: EvalResponsesSection | None = None
    judge: JudgeSection | None = None
    human: HumanSection | None = None
    report: ReportSection | None = None
    sweep: SweepSection | None = None

    def stages(self) -> list[str]:
        """Stages to run, in pipeline order: the ``run.stages`` list or every configured stage."""
        if self.run.stages is not None:
            wanted = set(self.run.stages)
            return [s for s in STAGES if s in wanted]
        present = {"validate"} | {s for s in STAGES if getattr(self, s, None) is not None}
        return [s for s in STAGES if s in present]

    def section(self, stage: str) -> BaseModel | None:
        return getattr(self, stage, None) if stage != "validate" else self.data


def _key_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The line of a dotted key in TOML text: the ``[table]`` header, then ``key =`` inside it.
    Good enough for error messages (it understands tables, dotted keys and inline keys)."""
    keys = [str(x) for x in loc if not isinstance(x, int)]
    if not keys:
        return None
    lines = text.splitlines()
    header = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
    table: list[str] = []
    best: int | None = None
    for i, line in enumerate(lines, 1):
        m = header.match(line)
        if m:
            table = [p.strip().strip('"') for p in m.group(1).split(".")]
            if table == keys[: len(table)] and best is None and len(table) == len(keys):
                best = i
            continue
        km = re.match(r"^\s*([A-Za-z0-9_.\"-]+)\s*=", line)
        if km:
            full = table + [p.strip().strip('"') for p in km.group(1).split(".")]
            if full == keys[: len(full)]:
                return i
    if best is not None:
        return best
    # fall back to the table holding the key
    for i, line in enumerate(lines, 1):
        m = header.match(line)
        if m and [p.strip() for p in m.group(1).split(".")] == keys[:-1]:
            return i
    return None


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the config table at ``loc`` (for "did you mean")."""
    model: Any = RunConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        f = getattr(model, "model_fields", {}).get(part)
        if f is None:
            return []
        ann = f.annotation
        model = next((a for a in (ann, *getattr(ann, "__args__", ())) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(getattr(model, "model_fields", {})) if model is not None else []


#: values that may name a local file or folder (model specs, a rubric file): resolved against the
#: config file's folder when that path exists (kyokan.paths.in_config_dir)
MAYBE_PATHS = (("prefs", "model"), ("sft", "model"), ("dpo", "model"), ("generate", "model"),
               ("eval_emotions", "model"), ("judge", "model"), ("judge", "rubric"))


def _resolve_paths(raw: dict[str, Any], path: Path) -> None:
    """Apply the one path rule (kyokan.paths) to what the file wrote: ``run.out`` relative to the
    config file; model specs and rubric files when they are paths. ``data.path`` is resolved where it
    is read (resolve_data_path), so the stage fingerprints keep the value as written."""
    from kyokan.paths import in_config_dir

    run = raw.get("run")
    if isinstance(run, dict) and isinstance(run.get("out"), str):
        run["out"] = in_config_dir(run["out"], path)
    for sec, key in MAYBE_PATHS:
        t = raw.get(sec)
        if isinstance(t, dict) and isinstance(t.get(key), str):
            t[key] = in_config_dir(t[key], path, maybe=True)
    gen = raw.get("generate")
    if isinstance(gen, dict) and isinstance(gen.get("systems"), list):
        gen["systems"] = [in_config_dir(v, path, maybe=True) if isinstance(v, str) and v not in ("base", "sft", "dpo")
                          else v for v in gen["systems"]]


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    from kyokan.errors import did_you_mean
    from kyokan.paths import load_toml

    p = Path(path)
    raw, text = load_toml(p)
    _resolve_paths(raw, p)
    for k, v in (overrides or {}).items():
        cur = raw
        parts = k.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = v
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(x) for x in loc)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key" + did_you_mean(str(loc[-1]), _fields_at(loc[:-1]))
            elif err["type"] == "missing":
                msg = "missing"
            problems.append(Problem(str(p), _key_line(text, loc), key, msg))
        raise InputError(problems) from None
    return cfg
