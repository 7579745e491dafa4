"""One convention for every command (docs/conventions.md), checked on the click app itself, so a
new command or flag that breaks it fails here rather than in a user's hands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

import kyokan.cli
from kyokan.io import sidecar

#: commands that reproduce a paper use the paper's own seed (EmPO's notebooks: random_state=34)
PAPER_SEEDS = {("reproduce", "empo"): 34}
DEFAULT_SEED = 0


def commands() -> Iterator[tuple[str, Any]]:
    def walk(c: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if hasattr(c, "commands"):
            for n, sub in sorted(c.commands.items()):
                yield from walk(sub, [*path, n])
        else:
            yield " ".join(path), c

    yield from walk(typer.main.get_command(kyokan.cli.app), [])


def options() -> Iterator[tuple[str, Any]]:
    for name, c in commands():
        for p in c.params:
            yield name, p


def test_the_walk_sees_every_area() -> None:
    names = {n.split()[0] for n, _ in commands()}
    assert {"data", "judge", "train", "generate", "report", "models", "human", "stats", "eval"} <= names
    assert sum(1 for _ in commands()) > 40


def test_short_options_mean_one_thing() -> None:
    """-c is --config everywhere; every other short option names the same long option wherever it exists."""
    meaning: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cmd, p in options():
        shorts = [o for o in p.opts + p.secondary_opts if o.startswith("-") and not o.startswith("--")]
        longs = [o for o in p.opts if o.startswith("--")]
        for s in shorts:
            meaning[s].add(longs[0])
            where[(s, longs[0])].append(cmd)
    assert meaning["-c"] == {"--config"}, {k: where[("-c", k)] for k in meaning["-c"]}
    assert meaning["-o"] == {"--output"}, {k: where[("-o", k)] for k in meaning["-o"]}
    assert meaning["-j"] == {"--concurrency"}
    clashes = {s: {lo: where[(s, lo)] for lo in los} for s, los in meaning.items() if len(los) > 1}
    assert not clashes


def test_concurrency_has_one_name() -> None:
    found = []
    for cmd, p in options():
        names = set(p.opts + p.secondary_opts)
        if p.name in ("concurrency", "workers", "jobs", "parallel") or names & {"--workers", "--jobs", "--parallel"}:
            found.append((cmd, sorted(names)))
            assert sorted(names) == ["--concurrency", "-j"], (cmd, names)
    assert len(found) >= 4  # generate, judge, prefs build, eval emotions


def test_every_option_and_argument_has_help() -> None:
    missing = [f"{cmd}: {p.opts[0] if p.opts else p.name}" for cmd, p in options() if not (getattr(p, "help", None) or "").strip()]
    assert not missing, missing
    assert not [cmd for cmd, c in commands() if not (c.help or "").strip()]


def test_seed_is_optional_with_one_default() -> None:
    seen = []
    for cmd, p in options():
        if "--seed" not in p.opts:
            continue
        seen.append(cmd)
        key = tuple(cmd.split())
        assert not p.required, f"{cmd}: --seed is required"
        if key in PAPER_SEEDS:
            assert p.default == PAPER_SEEDS[key], cmd
        elif p.default is None:  # taken from a config file: its default must be the same, and say so
            assert f"else {DEFAULT_SEED}" in (p.help or ""), cmd
        else:
            assert p.default == DEFAULT_SEED, f"{cmd}: --seed defaults to {p.default}"
    assert {"data sample", "data split", "human build", "generate", "judge", "train sft"} <= set(seen)
    import dataclasses

    from kyokan.train.config import TrainSettings

    assert next(f.default for f in dataclasses.fields(TrainSettings) if f.name == "seed") == DEFAULT_SEED


def test_local_model_commands_take_threads() -> None:
    have = {cmd for cmd, p in options() if "--threads" in p.opts}
    assert {"models chat", "generate", "judge"} <= have


def test_help_text_survives_rich_markup() -> None:
    """Square brackets in help ([trainer], [sweep]) are text, not rich markup that swallows them."""
    from rich.text import Text

    eaten = []
    for cmd, c in commands():
        for text in [c.help or ""] + [getattr(p, "help", None) or "" for p in c.params]:
            shown = Text.from_markup(text).plain
            if shown != text.replace("\\[", "["):
                eaten.append((cmd, text))
    assert not eaten


def test_train_help_shows_the_trainer_table(cli: Any) -> None:
    r = cli("train", "sft", "--help")
    assert r.code == 0
    assert "[trainer]" in r.stdout
    assert "Peak learning rate" in r.stdout


def test_sidecar_naming() -> None:
    assert sidecar("runs/judged.jsonl", "summary") == Path("runs/judged.summary.json")
    assert sidecar("clean.parquet", "rejects", ".jsonl") == Path("clean.rejects.jsonl")
    assert sidecar("export.jsonl", "provenance") == Path("export.provenance.json")
    assert sidecar("judged.jsonl", "cache", ".sqlite") == Path("judged.cache.sqlite")
    assert sidecar("noext", "summary") == Path("noext.summary.json")
    from kyokan.generate.runner import summary_path_for as gen_summary
    from kyokan.judge.runner import cache_path_for, summary_path_for

    assert gen_summary("g.jsonl") == summary_path_for("g.jsonl") == Path("g.summary.json")
    assert cache_path_for("g.jsonl") == Path("g.cache.sqlite")


def test_report_writes_where_the_demo_does() -> None:
    for cmd, c in commands():
        if cmd == "report":
            out = next(p for p in c.params if p.name == "output")
            assert out.default is None and "RUN_DIR/report/report.html" in out.help


def test_report_plots_draw_every_glyph() -> None:
    """≤/≥ are not in IPAex Gothic: the fallback font draws them, no warning per glyph."""
    pytest.importorskip("matplotlib")
    from kyokan.report.plots import figure_png, setup_matplotlib

    setup_matplotlib()
    import matplotlib.pyplot as plt

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig, ax = plt.subplots()
        ax.set_title("共感 ≥ 0.5 ≤ 話し手", fontweight="bold")
        figure_png(fig)
    assert not [w for w in caught if "missing from font" in str(w.message)]


NOISE = ("Loading weights", "Tokenizing train dataset", "Writing model shards", "FutureWarning", "it/s]",
         "examples/s]", "{'loss'", "'train_runtime'", "fatal: not a git repository", "de-quantizing")


def _kyokan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
         "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(kyokan.cli.__file__).parents[1])}
    e.pop("KYOKAN_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "kyokan", *args], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow  # ~30 s: a real training subprocess
def test_training_logs_are_quiet_and_per_step(tmp_path: Path) -> None:
    """A real 2-step SFT run: stderr holds kyokan's step lines, none of the libraries' bars,
    raw log dicts or deprecation warnings; the same lines go to RUN/train.log."""
    from train_util import short_dialogues, tiny_model

    data = short_dialogues(tmp_path, per_label=1)
    r = _kyokan("train", "sft", "--preset", "cpu-tiny", "--model", tiny_model(), "--data", str(data),
                "--max-steps", "2", "--logging-steps", "1", "--max-length", "64", "-o", str(tmp_path / "run"),
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for s in NOISE:
        assert s not in r.stderr, (s, r.stderr)
    assert "sft: step 1/2 · loss" in r.stderr and "sft: step 2/2 · loss" in r.stderr
    assert "sft: step 2/2" in (tmp_path / "run" / "train.log").read_text(encoding="utf-8")
    assert "sft done, 2 steps" in r.stdout


def test_lm_eval_git_call_is_quiet(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval")
    r = subprocess.run([sys.executable, "-c", "from kyokan.quiet import quiet_lm_eval_git; quiet_lm_eval_git();"
                        "import lm_eval.evaluator as ev; print(ev.get_git_commit_hash())"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(Path(kyokan.cli.__file__).parents[1]),
                            "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
    assert r.returncode == 0, r.stderr
    assert "fatal" not in r.stderr and "not a git repository" not in r.stderr
    assert r.stdout.strip() == "None"


def test_data_stats_reads_as_text(cli: Any, tmp_path: Path) -> None:
    from kyokan.data import sample_path

    one = tmp_path / "one.jsonl"
    one.write_text(sample_path("ja").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    r = cli("data", "stats", one, "--no-tokens")
    assert r.code == 0, r.stderr
    assert "-0.0" not in r.stdout and "label balance 0.000" in r.stdout
    assert "{'" not in r.stdout  # no Python dict
    j = cli("data", "stats", one, "--no-tokens", "--json")
    assert json.loads(j.stdout)["label_balance"]["normalized_entropy"] == 0.0


def test_markdown_tables_are_not_wrapped(cli: Any, tmp_path: Path) -> None:
    import random

    rng = random.Random(0)
    src_a, src_b = "a-system-with-a-rather-long-name-" + "x" * 60, "b-system-with-a-rather-long-name-" + "y" * 60
    lines = ["source,id,empathy_score_with_a_long_metric_name"]
    for s, mu in ((src_a, 3.0), (src_b, 3.5)):
        lines += [f"{s},{i},{mu + rng.gauss(0, 0.5):.3f}" for i in range(20)]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cli("stats", "compare", tmp_path / "scores.csv")
    assert r.code == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("|")]
    assert rows and all(ln.endswith("|") for ln in rows)  # one table row per line, however wide
    assert any(len(ln) > 200 for ln in rows)
