"""`kyokan schema list|dump|check`: the typed records as JSON Schemas, for users' own tools."""

from __future__ import annotations

from pathlib import Path

import typer

from kyokan.console import out, print_json

schema_app = typer.Typer(help="The record kinds kyokan's stages write and read, as JSON Schemas.", no_args_is_help=True)


@schema_app.command("list")
def list_cmd(json_: bool = typer.Option(False, "--json", help="Print kind, version and description as JSON.")) -> None:
    """Every record kind with its version and what it holds.

    Example: kyokan schema list
    """
    from kyokan.records import REGISTRY

    rows = [{"kind": k, "version": c.VERSION, "description": c.DESCRIPTION} for k, c in sorted(REGISTRY.items())]
    if json_:
        print_json(rows)
        return
    for r in rows:
        out.print(f"{r['kind']} v{r['version']}: {r['description']}", markup=False, soft_wrap=True)


@schema_app.command("dump")
def dump_cmd(output: Path = typer.Option(..., "-o", "--output", help="Folder for one <kind>.v<version>.schema.json per kind."),
             kind: list[str] = typer.Option([], "--kind", help="Only these kinds (repeatable; default: all).")) -> None:
    """Write the JSON Schema of every record kind (draft 2020-12, as pydantic emits it).

    Example: kyokan schema dump -o schemas/
    """
    from kyokan.records import REGISTRY, record_class
    from kyokan.records.base import json_schema

    kinds = kind or sorted(REGISTRY)
    from kyokan.io import write_json

    for k in kinds:
        cls = record_class(k)
        write_json(output / f"{k}.v{cls.VERSION}.schema.json", json_schema(cls))
    out.print(f"{len(kinds)} schema(s) → {output}", markup=False)


@schema_app.command("check")
def check_cmd(path: Path = typer.Argument(..., help="A JSON or JSONL file of kyokan records (e.g. one your tool wrote)."),
              json_: bool = typer.Option(False, "--json", help="Print kind and count as JSON.")) -> None:
    """Validate a file against the record kind it declares: one line per problem (file:line:
    field), exit 2 when any.

    Example: kyokan schema check runs/demo/judge/judged.jsonl
    """
    from kyokan.errors import InputError
    from kyokan.records import declared_kind, read_record, read_rows, record_class

    k = declared_kind(path)
    if k is None:
        raise InputError.at(str(path), 1, "kind", "declares no record kind (see `kyokan schema list`)")
    cls = record_class(k)
    n = 1 if path.suffix == ".json" else 0
    if path.suffix == ".json":
        read_record(path, cls)
    else:
        n = len(read_rows(path, cls))
    if json_:
        print_json({"kind": k, "version": cls.VERSION, "records": n})
    else:
        out.print(f"{path}: {n} {k} v{cls.VERSION} record(s), all valid", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
