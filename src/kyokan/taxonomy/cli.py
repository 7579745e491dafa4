"""`kyokan taxonomy list|show|opposites`."""

from __future__ import annotations

import typer
from rich.table import Table

from kyokan.console import out, print_json
from kyokan.taxonomy.registry import available, get_taxonomy

tax_app = typer.Typer(help="Emotion taxonomies: label sets, names, sentiment groups, opposites.", no_args_is_help=True)


@tax_app.command("list")
def list_cmd(json_: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the available taxonomies.

    Example: kyokan taxonomy list
    """
    rows = []
    for name in available():
        t = get_taxonomy(name)
        rows.append({"name": name, "labels": len(t), "opposites": len(t.opposites), "description": t.description})
    if json_:
        print_json(rows)
        return
    table = Table("name", "labels", "opposites", "description")
    for r in rows:
        table.add_row(str(r["name"]), str(r["labels"]), str(r["opposites"]), str(r["description"]))
    out.print(table)


@tax_app.command("show")
def show_cmd(name: str = typer.Argument(..., help="Taxonomy name or path to a taxonomy JSON file."),
             json_: bool = typer.Option(False, "--json", help="Rows with id, en, ja, sentiment, aliases.")) -> None:
    """Show a taxonomy's labels with English and Japanese names and sentiment groups.

    Example: kyokan taxonomy show goemotions28 --json
    """
    t = get_taxonomy(name)
    if json_:
        print_json([lab.as_row() for lab in t.labels])
        return
    table = Table("id", "en", "ja", "sentiment", "aliases", title=f"{t.name} — {t.source}")
    for lab in t.labels:
        table.add_row(lab.id, lab.en, lab.ja, lab.sentiment, ", ".join(lab.aliases))
    out.print(table)
    if t.dyads:
        dt = Table("dyad", "ja", "kind", "of", title="dyads")
        for d in t.dyads:
            dt.add_row(d.id, d.ja, d.kind, " + ".join(d.of))
        out.print(dt)


@tax_app.command("opposites")
def opposites_cmd(name: str = typer.Argument(..., help="Taxonomy name or path."),
                  json_: bool = typer.Option(False, "--json", help="A JSON object label → opposite label."),
                  details: bool = typer.Option(False, "--details", help="With --json: source and rationale per label.")) -> None:
    """Show the opposite-emotion map (used for EmPO preference pairs) and its asymmetric pairs.

    Example: kyokan taxonomy opposites ed32 --json
    """
    t = get_taxonomy(name)
    if json_:
        if details:
            print_json({k: {"opposite": v.opposite, "source": v.source, "rationale": v.rationale,
                            "symmetric": t.opposites.get(v.opposite) is not None and t.opposites[v.opposite].opposite == k}
                        for k, v in t.opposites.items()})
        else:
            print_json(t.opposite_map())
        return
    table = Table("label", "opposite", "source", "symmetric", "rationale", title=f"{t.name} opposites")
    asym = {a for a, _, _ in t.asymmetric_pairs()}
    for k, v in t.opposites.items():
        table.add_row(k, v.opposite, v.source, "no" if k in asym else "yes", v.rationale)
    out.print(table)
    missing = [i for i in t.ids if i not in t.opposites]
    if missing:
        out.print(f"labels without an opposite: {', '.join(missing)}")
    pairs = t.asymmetric_pairs()
    if pairs:
        out.print(f"asymmetric pairs ({len(pairs)}): " + "; ".join(f"{a} → {b} but {b} → {c or '∅'}" for a, b, c in pairs))


def register(app: typer.Typer) -> None:
    app.add_typer(tax_app, name="taxonomy")
