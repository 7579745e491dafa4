"""Every shell example in README.md and docs/*.md works as written.

Collected: each fenced block opened with ```bash, ```sh, ```shell or ```console (in a console
block only the ``$ `` lines are commands) — one test per block, with an id like
``docs/data.md:42`` (the line of the opening fence).

The line right before the fence may carry a marker:

``<!-- docs-test: help-only (why) -->``
    for a block that needs a GPU, a network service, a hub model or minutes of CPU. The block is
    only checked: ``bash -n`` parses it, and every ``kyokan ...`` command in it (also
    ``python -m kyokan`` / ``torchrun ... -m kyokan``) must name existing subcommands and only
    ``--flags`` that command has (click introspection of ``kyokan.cli.app``).
``<!-- docs-test: skip (why) -->``
    not a command at all (output samples should rather be fenced as ```text).

Every other block runs under ``bash`` with ``set -euo pipefail`` and gets the same flag check
first. A command line whose comment starts with ``# exit N`` (``# exit 2: why``) must exit with
status N (for examples of refused input).

Blocks of one page run **in order, in one temp folder per page** (not self-contained): a block
may use files that earlier blocks of its page made — a page starts by copying the bundled samples
(``cp "$(kyokan data bundled ja)" dialogues.jsonl``) under the names its examples use. Running one
block alone (``-k``) first runs the earlier blocks of its page.

Also checked: every fence names its language (```text for output and layouts), no ``kyokan``
line sits in an unfenced block, at least ``MIN_RUN`` blocks really run, README links every
docs page, and the ``Example:`` lines of every command's ``--help`` pass the flag check. The environment: ``kyokan``/``python`` on PATH are the current
interpreter's (the bin folder of ``sys.executable``), PYTHONPATH passes through, the
Hugging Face offline switches are set and API keys are removed, so nothing leaves the machine.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
MARKER = re.compile(r"^<!--\s*docs-test:\s*(help-only|skip)\b(.*?)-->\s*$")
EXPECT_EXIT = re.compile(r"^(?P<cmd>[^#]*\S)\s+#\s*exit\s+(?P<code>\d+)\b(?!\.\d).*$")
#: a block that runs longer than this should be marked help-only
TIMEOUT = 150
#: the held-out check: at least this many examples really run (not help-only)
MIN_RUN = 20


@dataclass
class Block:
    page: str  # relative to the repo root
    line: int  # 1-based line of the opening fence
    lang: str
    mode: str  # "run", "help-only" or "skip"
    text: str
    index: int = 0  # position among the page's shell blocks

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def script(self) -> str:
        if self.lang != "console":
            return self.text
        return "\n".join(ln[2:] for ln in self.text.splitlines() if ln.startswith("$ "))


def parse_fences(path: Path) -> list[tuple[int, str, str, str]]:
    """(fence line, language, marker line above it, body) of every fenced block in a page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            fence, lang = m.group(1), m.group(2).lower()
            j = i + 1
            while j < len(lines) and not lines[j].startswith(fence):
                j += 1
            found.append((i + 1, lang, lines[i - 1].strip() if i else "", "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    return found


def collect_blocks() -> list[Block]:
    blocks: list[Block] = []
    for path in PAGES:
        rel = path.relative_to(ROOT).as_posix()
        n = 0
        for line, lang, above, body in parse_fences(path):
            if lang not in SHELL:
                continue
            m = MARKER.match(above)
            blocks.append(Block(rel, line, lang, m.group(1) if m else "run", body, index=n))
            n += 1
    return blocks


BLOCKS = collect_blocks()


# --- checking kyokan command lines against the CLI ------------------------------------------

def _commands(script: str) -> list[tuple[str, list[str]]]:
    """(source line, tokens) of every simple command in a script; heredoc bodies are skipped."""
    logical: list[str] = []
    buf = ""
    heredoc: str | None = None
    for raw in script.splitlines():
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", raw)
        if m:
            heredoc = m.group(1)
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        logical.append(buf + raw)
        buf = ""
    if buf:
        logical.append(buf)
    out: list[tuple[str, list[str]]] = []
    for src in logical:
        lex = shlex.shlex(src, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        lex.commenters = "#"
        try:
            tokens = list(lex)
        except ValueError as e:  # unbalanced quotes: bash -n reports it
            raise AssertionError(f"cannot parse {src!r}: {e}") from e
        cmd: list[str] = []
        for tok in [*tokens, ";"]:
            if tok and all(c in "();<>|&" for c in tok):
                if cmd:
                    out.append((src.strip(), cmd))
                cmd = []
            else:
                cmd.append(tok)
    return out


def _kyokan_args(tokens: list[str]) -> list[str] | None:
    while tokens and re.match(r"^[A-Za-z_]\w*=", tokens[0]):
        tokens = tokens[1:]  # VAR=value prefixes
    if tokens and os.path.basename(tokens[0]) == "kyokan":
        return tokens[1:]
    for i in range(len(tokens) - 1):
        if tokens[i] == "-m" and tokens[i + 1] == "kyokan":
            return tokens[i + 2:]
    return None


_ROOT_COMMAND: Any = None


def _root_command() -> Any:
    global _ROOT_COMMAND
    if _ROOT_COMMAND is None:
        import typer.main

        from kyokan.cli import app

        _ROOT_COMMAND = typer.main.get_command(app)
    return _ROOT_COMMAND


def _options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if getattr(p, "param_type_name", "") == "option"]


def _is_group(cmd: Any) -> bool:
    return isinstance(getattr(cmd, "commands", None), dict)


def check_kyokan_line(args: list[str]) -> list[str]:
    """Problems with one ``kyokan ARGS`` command: unknown subcommands or flags."""
    cmd = _root_command()  # typer's (vendored) click objects: duck-typed, not isinstance
    path = ["kyokan"]
    problems: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if tok == "--":
            break
        if tok.startswith("-") and len(tok) > 1 and not re.fullmatch(r"-[\d.]+(e-?\d+)?", tok):
            name = tok.split("=", 1)[0]
            if name == "--help":
                continue
            opt = None
            for p in _options(cmd):
                if name in (*p.opts, *p.secondary_opts):
                    opt = p
            if opt is None:
                known = sorted(o for p in _options(cmd) for o in (*p.opts, *p.secondary_opts))
                problems.append(f"`{' '.join(path)}` has no option {name} (it has: {', '.join(known)})")
                continue
            if not opt.is_flag and not opt.count and "=" not in tok:
                i += max(opt.nargs, 1)
            continue
        if _is_group(cmd):
            sub = cmd.commands.get(tok)
            if sub is None:
                problems.append(f"`{' '.join(path)}` has no subcommand {tok!r} "
                                f"(it has: {', '.join(sorted(cmd.commands))})")
                return problems
            cmd = sub
            path.append(tok)
    if _is_group(cmd) and len(path) > 1 and "--help" not in args:
        problems.append(f"`{' '.join(path)}` needs a subcommand ({', '.join(sorted(cmd.commands))})")
    return problems


def check_block(block: Block) -> None:
    """bash -n, then every kyokan command's subcommands and flags."""
    script = block.script
    r = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert r.returncode == 0, f"{block.id}: bash cannot parse the block:\n{r.stderr}"
    problems = []
    for src, tokens in _commands(script):
        args = _kyokan_args(tokens)
        if args is not None:
            problems += [f"{src}\n    {p}" for p in check_kyokan_line(args)]
    assert not problems, f"{block.id}:\n" + "\n".join(problems)


# --- running blocks ------------------------------------------------------------------------

def _expect_exits(script: str) -> str:
    """``cmd  # exit N`` → run cmd and require status N (set -e would stop at it otherwise)."""
    out = []
    prev_continues = False
    for ln in script.splitlines():
        m = None if prev_continues else EXPECT_EXIT.match(ln)
        if m:
            cmd, code = m.group("cmd"), m.group("code")
            quoted = shlex.quote(cmd.strip())
            ln = (f"if {cmd}; then __rc=0; else __rc=$?; fi; "
                  f"[ \"$__rc\" = {code} ] || {{ echo \"docs-test: expected exit {code}, got $__rc: \"{quoted} >&2; exit 1; }}")
        out.append(ln)
        prev_continues = ln.rstrip().endswith("\\")
    return "\n".join(out)


def _env(shim: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("OPENAI_API_KEY", "KYOKAN_API_KEY", "OPENAI_BASE_URL"):
        env.pop(key, None)
    bindir = Path(sys.executable).parent
    path = [str(bindir)]
    if not (bindir / "kyokan").exists() or not (bindir / "python").exists():
        shim.mkdir(parents=True, exist_ok=True)
        for name, body in (("kyokan", f'exec {shlex.quote(sys.executable)} -m kyokan "$@"'),
                           ("python", f'exec {shlex.quote(sys.executable)} "$@"'),
                           ("python3", f'exec {shlex.quote(sys.executable)} "$@"')):
            p = shim / name
            p.write_text(f"#!/bin/sh\n{body}\n")
            p.chmod(0o755)
        path.insert(0, str(shim))
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", NO_COLOR="1", TERM="dumb", COLUMNS="120")
    return env


def run_block(block: Block, cwd: Path) -> None:
    check_block(block)
    script = "set -euo pipefail\n" + _expect_exits(block.script) + "\n"
    try:
        r = subprocess.run(["bash", "-c", script], cwd=cwd, env=_env(cwd.parent / f"{cwd.name}-bin"),
                           text=True, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.id}: still running after {TIMEOUT} s — mark it "
                    "`<!-- docs-test: help-only (why) -->` or make it smaller")
    if r.returncode != 0:
        pytest.fail(f"{block.id} exited {r.returncode} (in {cwd})\n--- block\n{block.script}\n"
                    f"--- stdout (tail)\n{r.stdout[-3000:]}\n--- stderr (tail)\n{r.stderr[-3000:]}")


@dataclass
class Page:
    folder: Path
    done: dict[int, bool] = field(default_factory=dict)  # block index → passed


@pytest.fixture(scope="session")
def page_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Page]:
    return {}


def _page(pages: dict[str, Page], name: str, factory: pytest.TempPathFactory) -> Page:
    if name not in pages:
        pages[name] = Page(factory.mktemp(re.sub(r"\W+", "_", name)))
    return pages[name]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_example(block: Block, page_folders: dict[str, Page],
                 tmp_path_factory: pytest.TempPathFactory) -> None:
    if block.mode == "skip":
        pytest.skip("marked docs-test: skip")
    if block.mode == "help-only":
        check_block(block)
        return
    page = _page(page_folders, block.page, tmp_path_factory)
    for earlier in BLOCKS:
        if earlier.page == block.page and earlier.index < block.index and earlier.mode == "run":
            if earlier.index not in page.done:
                try:
                    run_block(earlier, page.folder)
                    page.done[earlier.index] = True
                except BaseException:
                    page.done[earlier.index] = False
                    raise
            if not page.done[earlier.index]:
                pytest.fail(f"{block.id} runs after {earlier.id} in the same folder, and that failed")
    page.done[block.index] = False
    run_block(block, page.folder)
    page.done[block.index] = True


# --- the suite itself ----------------------------------------------------------------------

def test_enough_examples_run() -> None:
    """Nobody silently marks everything help-only."""
    ran = [b.id for b in BLOCKS if b.mode == "run"]
    assert len(ran) >= MIN_RUN, f"only {len(ran)} documented examples run: {ran}"


def test_every_fence_names_its_language() -> None:
    """A shell example fenced without a language would escape this module: use ```bash, or
    ```text for output and layouts."""
    bare = [f"{p.relative_to(ROOT).as_posix()}:{line}" for p in PAGES
            for line, lang, _, _ in parse_fences(p) if not lang]
    assert not bare, f"fences without a language: {bare}"


def test_no_commands_outside_fences() -> None:
    """An indented (unfenced) `kyokan ...` line would escape this module too."""
    found = []
    for p in PAGES:
        inside = False
        for n, ln in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if FENCE.match(ln):
                inside = not inside
            elif not inside and re.match(r"^ {4,}(\$ )?kyokan ", ln):
                found.append(f"{p.relative_to(ROOT).as_posix()}:{n}: {ln.strip()}")
    assert not found, "fence these as ```bash:\n" + "\n".join(found)


def test_markers_are_well_formed() -> None:
    """A misspelt marker would silently run (or silently not check) a block."""
    bad = []
    for p in PAGES:
        for n, ln in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if "docs-test" in ln and not MARKER.match(ln.strip()):
                bad.append(f"{p.relative_to(ROOT).as_posix()}:{n}: {ln.strip()}")
    assert not bad, "\n".join(bad)


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", readme))
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set(), f"README's documentation index misses {sorted(pages - linked)}"
    assert linked - pages == set(), f"README links missing pages {sorted(linked - pages)}"


def test_flag_check_catches_mistakes() -> None:
    """The help-only check can fail: unknown subcommands and flags are reported."""
    assert check_kyokan_line(["data", "validate", "x.jsonl", "--skip-invalid", "-o", "y"]) == []
    assert check_kyokan_line(["data", "sample", "x", "--n", "5", "--seed", "1"]) == []
    assert any("--nope" in p for p in check_kyokan_line(["data", "validate", "x", "--nope"]))
    assert any("'valdate'" in p for p in check_kyokan_line(["data", "valdate", "x"]))
    assert any("needs a subcommand" in p for p in check_kyokan_line(["data"]))
    tokens = _commands("echo pw | kyokan crowd user add a --role reviewer --db c.db  # note\n"
                       "torchrun --nproc_per_node 2 -m kyokan train sft \\\n    --max-steps 2 -o r\n"
                       "python - <<'EOF'\nkyokan not-a-command\nEOF\n")
    args = [a for _, t in tokens if (a := _kyokan_args(t)) is not None]
    assert args == [["crowd", "user", "add", "a", "--role", "reviewer", "--db", "c.db"],
                    ["train", "sft", "--max-steps", "2", "-o", "r"]]


def test_expected_exit_rewrite(tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + _expect_exits("false   # exit 1\necho after") + "\n"
    r = subprocess.run(["bash", "-c", script], text=True, capture_output=True)
    assert r.returncode == 0 and r.stdout == "after\n"
    script = "set -euo pipefail\n" + _expect_exits("true   # exit 2") + "\n"
    r = subprocess.run(["bash", "-c", script], text=True, capture_output=True)
    assert r.returncode == 1 and "expected exit 2, got 0" in r.stderr


def test_help_examples_name_real_commands_and_flags() -> None:
    """The `Example: kyokan ...` lines of every command's --help pass the same check."""
    def walk(cmd: Any, path: list[str]) -> Any:
        if _is_group(cmd):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    problems, seen = [], 0
    for path, cmd in walk(_root_command(), []):
        for m in re.finditer(r"Example:\s*(.+)", cmd.help or ""):
            for src, tokens in _commands(m.group(1)):
                args = _kyokan_args(tokens)
                if args is not None:
                    seen += 1
                    problems += [f"kyokan {' '.join(path)} --help: {src}\n    {p}" for p in check_kyokan_line(args)]
    assert seen >= 30, f"only {seen} help examples found: has the `Example:` convention changed?"
    assert not problems, "\n".join(problems)
