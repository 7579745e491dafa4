"""The typed run configuration: one TOML file names the stages to run and their settings.

Errors name the config key and its line in the file (``demo.toml:14: train.sft.lr: …``), exit 2.
"""

from __future__ import annotations

import re
import tomllib
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


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError.at(str(p), None, None, f"cannot read config: {e.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise InputError.at(str(p), int(m.group(1)) if m else None, None, f"not valid TOML: {e}") from None
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
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "missing"
            problems.append(Problem(str(p), _key_line(text, loc), key, msg))
        raise InputError(problems) from None
    return cfg
