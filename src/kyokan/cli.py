"""`kyokan <area> <verb>`: the command line.

Each area adds its commands from its own ``cli.py`` (a ``register(app)`` function), so a new area
is a new folder and one line in ``AREAS`` — nothing else changes. Heavy libraries are imported
inside the commands, which keeps ``kyokan --help`` instant.
"""

from __future__ import annotations

import importlib
import sys

import typer

from kyokan import __version__
from kyokan.errors import InputError, KyokanError

app = typer.Typer(
    name="kyokan",
    help="kyokan (共感): empathetic dialogue data, preference pairs, SFT/DPO, LLM judging and evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

#: areas whose ``kyokan.<area>.cli`` registers commands, in help order
AREAS = ("taxonomy", "data", "models", "generate", "prefs", "train", "judge", "metrics", "human",
         "stats", "crowd", "report", "reproduce", "pipeline", "records")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kyokan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          verbose: bool = typer.Option(False, "--verbose", help="Leave the libraries' own logs, progress bars and "
                                                               "warnings on (also: KYOKAN_VERBOSE=1).")) -> None:
    """kyokan (共感): from emotion-grounded dialogues to an aligned model and an honest evaluation."""
    from kyokan.quiet import configure

    configure(verbose or None)


def _register_areas() -> None:
    for area in AREAS:
        name = f"kyokan.{area}.cli"
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name in (name, f"kyokan.{area}"):
                continue  # area not built yet
            raise
        mod.register(app)


_register_areas()


def main() -> None:
    MAX_SHOWN = 50
    try:
        app()
    except InputError as e:
        for p in e.problems[:MAX_SHOWN]:
            sys.stderr.write(f"{p}\n")
        if e.total > min(len(e.problems), MAX_SHOWN):
            sys.stderr.write(f"... and {e.total - min(len(e.problems), MAX_SHOWN)} more problems\n")
        sys.exit(2)
    except KyokanError as e:
        sys.stderr.write(f"kyokan: {e}\n")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("kyokan: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
