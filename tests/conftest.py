"""Shared test fixtures: offline environment and an in-process CLI runner that goes through
kyokan's real entry point (so exit codes and error printing are what users get)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("COLUMNS", "200")
# one torch thread: on a shared 2-core machine two threads are 3-10x slower, and results are
# reproducible across machines with different core counts
os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(__file__).parent / "data"
#: slices of EmPO's public release (never copied into the repo): $KYOKAN_EMPO_RELEASE, else the
#: steering checkout's shared/data folder beside the repository
EMPO_RELEASE = Path(os.environ.get("KYOKAN_EMPO_RELEASE")
                    or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "empo-release-sample")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str | os.PathLike[str]) -> CliResult:
    from kyokan.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["kyokan", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old_argv
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def empo_release() -> Path:
    """The EmPO release sample (``predictions/``, ``data/he_data.csv``, NIDF counts, EPITOME CSVs);
    tests that need it skip when it is absent."""
    if not (EMPO_RELEASE / "predictions").is_dir():
        pytest.skip(f"EmPO release sample not found at {EMPO_RELEASE} (set KYOKAN_EMPO_RELEASE)")
    return EMPO_RELEASE


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory made by the real stages (tests/run_util.py): two systems, an emotion
    predictor and a judge answered by a loopback OpenAI-compatible server, human ratings imported.
    Tests must not modify it (copy it first)."""
    from run_util import build_real_run

    return build_real_run(tmp_path_factory.mktemp("real-run"))
