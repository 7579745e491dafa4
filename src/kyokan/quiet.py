"""Library noise, in one place: what transformers, datasets, huggingface_hub, TRL and friends may
print on a kyokan user's terminal.

A kyokan command prints its own progress (per row or per step, on stderr) and its own warnings.
The libraries' progress bars (``Loading weights``, ``Tokenizing train dataset``, ``Writing model
shards``, GGUF de-quantisation), their info logs and deprecation warnings that kyokan's calls
trigger inside other libraries are not something a user can act on, so :func:`configure` turns
them off. Library warnings at level ERROR stay visible, and so does every warning category this
module does not name.

``kyokan --verbose …`` or ``KYOKAN_VERBOSE=1`` leaves every library at its own defaults.

Cheap to call: it sets environment variables that the libraries read when they are first
imported, and only calls into a library that is imported already.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

#: environment variables the libraries read at import (only set when the user has not set them)
ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}

#: (category, message regex, module regex) of warnings that libraries raise about each other's
#: calls — never about anything in the user's command or config
FILTERS: tuple[tuple[type[Warning], str, str], ...] = (
    # TRL/PEFT still call model.is_gradient_checkpointing (transformers 5 renamed it)
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated", r"transformers\..*"),
    (FutureWarning, r"`gradient_checkpointing_enable` is deprecated", r"transformers\..*"),
    # torch's checkpoint asks callers to pass use_reentrant; transformers decides, not the user
    (UserWarning, r".*use_reentrant parameter should be passed explicitly", r"torch\..*"),
)

_state: dict[str, Any] = {"verbose": None}


def verbose_requested() -> bool:
    """``KYOKAN_VERBOSE`` set to anything but empty/0/false."""
    return os.environ.get("KYOKAN_VERBOSE", "").strip().lower() not in ("", "0", "false", "no")


def is_verbose() -> bool:
    v = _state["verbose"]
    return verbose_requested() if v is None else bool(v)


def configure(verbose: bool | None = None) -> None:
    """Quiet the libraries (or, with ``verbose``, leave them alone). Idempotent."""
    if verbose is None:
        verbose = verbose_requested()
    _state["verbose"] = verbose
    if verbose:
        os.environ["KYOKAN_VERBOSE"] = "1"  # child processes (torchrun workers, lm-eval) inherit it
        return
    for k, v in ENV.items():
        os.environ.setdefault(k, v)
    for category, message, module in FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    quiet_loaded()


def quiet_loaded() -> None:
    """Apply the settings to libraries that are imported already (the environment variables only
    reach a library imported after :func:`configure`)."""
    if is_verbose():
        return
    if "transformers" in sys.modules:
        with contextlib.suppress(Exception):
            from transformers.utils import logging as tlog

            tlog.set_verbosity_error()
            tlog.disable_progress_bar()
    if "datasets" in sys.modules:
        with contextlib.suppress(Exception):
            import datasets

            datasets.utils.logging.set_verbosity_error()
            datasets.disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        with contextlib.suppress(Exception):
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()


def _passthrough(iterable: Any = None, *args: Any, **kwargs: Any) -> Any:
    return iterable if iterable is not None else []


@contextlib.contextmanager
def no_tqdm(*modules: Any) -> Iterator[None]:
    """Within the block, ``tqdm`` as imported by each of ``modules`` (``from tqdm import tqdm``,
    which no library switch reaches) just iterates. Nothing changes in verbose mode."""
    if is_verbose():
        yield
        return
    saved = [(m, m.tqdm) for m in modules if hasattr(m, "tqdm")]
    for m, _ in saved:
        m.tqdm = _passthrough
    try:
        yield
    finally:
        for m, orig in saved:
            m.tqdm = orig


def quiet_lm_eval_git() -> None:
    """lm-eval records the git commit of the current folder by running ``git describe`` with its
    stderr on the terminal: outside a repository the user sees ``fatal: not a git repository``.
    Make that call the same one with stderr discarded (lm-eval has no switch for it). Idempotent;
    the recorded ``git_hash`` is unchanged."""
    import subprocess

    try:
        import lm_eval.evaluator as ev
        import lm_eval.loggers.utils as lu
    except ImportError:
        return
    if getattr(ev.get_git_commit_hash, "_kyokan_quiet", False):
        return

    def get_git_commit_hash() -> str | None:
        try:
            out = subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL)
            return out.strip().decode()
        except (subprocess.CalledProcessError, FileNotFoundError, OSError):
            h: str | None = lu.get_commit_from_path(os.getcwd())
            return h

    get_git_commit_hash._kyokan_quiet = True  # type: ignore[attr-defined]
    ev.get_git_commit_hash = get_git_commit_hash
    lu.get_git_commit_hash = get_git_commit_hash
