"""`kyokan crowd init|serve|tasks|user|config|status|screen|export`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from kyokan.console import err, out, print_json
from kyokan.errors import KyokanError

crowd_app = typer.Typer(help="The data-collection web app: situations, dialogues and ratings on a real database.",
                        no_args_is_help=True)
tasks_app = typer.Typer(help="Create items to collect (round 1 situations, round 2 dialogues, round 3 ratings).",
                        no_args_is_help=True)
user_app = typer.Typer(help="Reviewer, lead and admin accounts.", no_args_is_help=True)
workers_app = typer.Typer(help="Crowd worker ids registered ahead of time (invite-only collection).",
                          no_args_is_help=True)
crowd_app.add_typer(tasks_app, name="tasks")
crowd_app.add_typer(user_app, name="user")
crowd_app.add_typer(workers_app, name="workers")

DB_HELP = "Database: a SQLite path or sqlite:///path, or postgresql://user@host/db (default: $KYOKAN_CROWD_DB)."


def _db(url: str | None) -> Any:
    from kyokan.crowd.db import CrowdDB

    db = CrowdDB(url)
    db.require_schema()
    return db


@crowd_app.command("init")
def init_cmd(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    admin: str = typer.Option(None, "--admin", help="Also create this admin user (password from $KYOKAN_CROWD_PASSWORD or a prompt)."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create the schema (or migrate it to this version) and store default settings.

    Example: kyokan crowd init --db crowd.db --admin lead
    """
    from kyokan.crowd import init_db
    from kyokan.crowd.db import CrowdDB, head_revision, redact, upgrade

    handle = CrowdDB(db)
    before, after = upgrade(handle)
    if handle.setting("config") is None:
        init_db(handle.url)
    if admin:
        from kyokan.crowd.reviewing import add_user

        add_user(handle, admin, _password(), "admin")
    res = {"db": redact(handle.url), "revision_before": before, "revision": after, "head": head_revision(),
           "admin": admin}
    if json_:
        print_json(res)
    else:
        out.print(f"{res['db']}: schema {before or 'none'} → {after}" + (f"; admin {admin} set" if admin else ""))


PASSWORD_ENV = "KYOKAN_CROWD_PASSWORD"


def _piped_line(wait: float | None) -> str | None:
    """The first line piped on stdin (without its line end), or None when stdin is a terminal,
    closed, empty, or — with ``wait`` — has nothing to read within ``wait`` seconds."""
    stdin = sys.stdin
    if stdin is None:
        return None
    try:
        if stdin.isatty():
            return None
    except (OSError, ValueError):
        return None
    try:
        fd = stdin.fileno()
    except (OSError, ValueError, AttributeError):
        fd = None  # an in-memory stream (tests): readable at once
    if fd is not None and wait is not None:
        import select

        try:
            ready, _, _ = select.select([fd], [], [], wait)
        except (OSError, ValueError):
            ready = [fd]  # not selectable (a regular file): readable
        if not ready:
            return None
    try:
        line = stdin.readline()
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not line:
        return None  # EOF: nothing was piped
    return line.removesuffix("\n").removesuffix("\r")


def _password() -> str:
    """The password to set: a line piped on stdin wins over $KYOKAN_CROWD_PASSWORD (the quick
    start exports it, so a piped one must not be silently replaced by it); then the variable;
    then a prompt on a terminal. The caller applies the length rule to whichever is used."""
    env = os.environ.get(PASSWORD_ENV)
    # with the variable set, a pipe that never writes must not hang the command
    piped = _piped_line(wait=2.0 if env else None)
    if piped is not None:
        return piped
    if env:
        return env
    if sys.stdin is not None and sys.stdin.isatty():
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    raise KyokanError(f"no password: pipe it on stdin or set {PASSWORD_ENV}")


@crowd_app.command("serve")
def serve_cmd(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    dev: bool = typer.Option(False, "--dev", help="Allow a throwaway signing key when KYOKAN_CROWD_SECRET is unset."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="Mark cookies Secure (behind HTTPS)."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the web app (workers: /w/WORKER_ID; reviewers: /login). Needs KYOKAN_CROWD_SECRET.

    Example: KYOKAN_CROWD_SECRET=$(python -c 'import secrets;print(secrets.token_urlsafe(32))') kyokan crowd serve --db crowd.db --port 8000
    """
    import uvicorn

    from kyokan.crowd.web import create_app

    app = create_app(_db(db), dev=dev, secure_cookies=secure_cookies)
    err.print(f"kyokan crowd: http://{host}:{port}/  (workers: /w/<worker id>, reviewers: /login)", markup=False)
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from any loopback peer;
    # the app reads it itself, only from the config's trusted_proxies
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, proxy_headers=False,
                server_header=False)


@tasks_app.command("situations")
def tasks_situations(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    taxonomy: str = typer.Option("goemotions28", "--taxonomy", "-t", help="Taxonomy name or JSON path."),
    target: int = typer.Option(None, "--target", help="Situations per emotion (default: config target_situation = 10)."),
    emotions: str = typer.Option(None, "--emotions", help="Comma-separated subset of labels (default: all)."),
    targets: Path = typer.Option(None, "--targets", help="JSON file {emotion: target} overriding --target per emotion."),
    lang: str = typer.Option("ja", "--lang", help="Language the workers write in."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Round 1: one item per emotion, closed at its target.

    Example: kyokan crowd tasks situations --db crowd.db --taxonomy goemotions28 --target 10
    """
    import json

    from kyokan.crowd.tasks import create_situation_tasks

    per = json.loads(targets.read_text(encoding="utf-8")) if targets else None
    em = [e.strip() for e in emotions.split(",") if e.strip()] if emotions else None
    created = create_situation_tasks(_db(db), taxonomy=taxonomy, target=target, emotions=em, lang=lang, targets=per)
    _report_created(created, json_)


@tasks_app.command("dialogues")
def tasks_dialogues(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    from_file: Path = typer.Option(None, "--from", help="Situations file (JSONL or CSV: id, emotion, situation, optional lang); default: the approved crowd situations."),
    target: int = typer.Option(None, "--target", help="Dialogues per emotion–situation pair (default: config target_dialogue = 15)."),
    taxonomy: str = typer.Option("goemotions28", "--taxonomy", "-t", help="Taxonomy of the file's emotion labels."),
    lang: str = typer.Option("ja", "--lang", help="Language of the file's rows without a lang column."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Round 2: one item per emotion–situation pair.

    Example: kyokan crowd tasks dialogues --db crowd.db --target 15
    Example: kyokan crowd tasks dialogues --db crowd.db --from situations.jsonl
    """
    from kyokan.crowd.tasks import create_dialogue_tasks, import_situations, read_situation_file

    handle = _db(db)
    uids = None
    if from_file is not None:
        rows = read_situation_file(from_file, taxonomy=taxonomy, lang=lang)
        uids = import_situations(handle, rows)
    _report_created(create_dialogue_tasks(handle, target=target, situations=uids), json_)


@tasks_app.command("ratings")
def tasks_ratings(
    packets: Path = typer.Argument(..., help="Rating packets JSONL: {id, item, metrics, scale, target?}, or kyokan human design's tasks.jsonl."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    target: int = typer.Option(None, "--target", help="Raters per packet, overriding the packets' own target (default: packet target; else 1 for kyokan human packets, config target_rating = 3 for single items)."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Round 3: rating items (e.g. from the human-evaluation stage), Likert scale per metric.

    Example: kyokan crowd tasks ratings packets.jsonl --db crowd.db --target 3
    """
    from kyokan.crowd.tasks import create_rating_tasks, read_rating_packets

    _report_created(create_rating_tasks(_db(db), read_rating_packets(packets), target=target), json_)


def _report_created(created: list[str], json_: bool) -> None:
    if json_:
        print_json({"created": len(created), "keys": created})
    else:
        out.print(f"created {len(created)} item(s)")


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="Login name."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    role: str = typer.Option("reviewer", "--role", help="reviewer, lead or admin."),
) -> None:
    """Create or update a user; the password comes from $KYOKAN_CROWD_PASSWORD, stdin or a prompt.

    Example: echo 'a long passphrase' | kyokan crowd user add alice --role reviewer --db crowd.db
    """
    from kyokan.crowd.reviewing import add_user

    add_user(_db(db), username, _password(), role)
    out.print(f"user {username} ({role}) set; any sessions of an existing {username} were logged out")


@user_app.command("disable")
def user_disable(
    username: str = typer.Argument(..., help="Login name."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    enable: bool = typer.Option(False, "--enable", help="Re-enable instead."),
) -> None:
    """Disable an account (its sessions end at once), or re-enable it with --enable.

    Example: kyokan crowd user disable ayaka --db crowd.db
    """
    from kyokan.crowd.reviewing import set_user_active

    n = set_user_active(_db(db), username, enable)
    out.print(f"user {username} {'enabled' if enable else f'disabled; {n} session(s) ended'}")


@workers_app.command("add")
def workers_add(
    ids: list[str] = typer.Argument(None, help="Platform worker ids."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    from_file: Path = typer.Option(None, "--from", help="A file of worker ids, one a line."),
    reissue: bool = typer.Option(False, "--reissue", help="Also give existing ids a new key (ends their bindings)."),
    output: Path = typer.Option(None, "-o", "--output", help="Write id,key CSV here (default: stdout)."),
) -> None:
    """Register worker ids ahead of time and print each one's recovery key (send each worker
    theirs through the platform). With `--set worker_registration=invite` only such ids work.

    Example: kyokan crowd workers add W123 W456 --db crowd.db -o keys.csv
    """
    from kyokan.crowd.assignment import create_workers
    from kyokan.io import atomic_open

    wanted = list(ids or [])
    if from_file is not None:
        if not from_file.exists():
            raise KyokanError(f"{from_file}: no such file")
        wanted += [x.strip() for x in from_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    if not wanted:
        raise KyokanError("no worker ids: give them as arguments or with --from FILE")
    from kyokan.crowd.assignment import WORKER_ID

    bad = [w for w in wanted if not WORKER_ID.fullmatch(w)]
    if bad:
        raise KyokanError(f"worker id {bad[0]!r}: 1–64 ASCII letters, digits or _.@:- (starting with a letter or digit)")
    keys = create_workers(_db(db), wanted, reissue=reissue)
    lines = ["worker_id,recovery_key", *[f"{w},{k}" for w, k in keys.items()]]
    if output is not None:
        with atomic_open(output, "w") as f:
            f.write("\n".join(lines) + "\n")
        out.print(f"{len(keys)} key(s) → {output}")
    else:
        sys.stdout.write("\n".join(lines) + "\n")


@crowd_app.command("config")
def config_cmd(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    set_: list[str] = typer.Option(None, "--set", help="KEY=VALUE (e.g. pay.dialogue=50, rejection_cap=0.3, caps.situation=20); repeatable."),
    json_: bool = typer.Option(False, "--json", help="Print the config as JSON."),
) -> None:
    """Show or change the collection settings (running servers pick changes up within 5 s).

    Example: kyokan crowd config --db crowd.db --set pay.dialogue=50 --set lease_seconds=1200
    """
    handle = _db(db)
    cfg = handle.config(fresh=True)
    for kv in set_ or []:
        if "=" not in kv:
            raise KyokanError(f"--set {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        cfg.set(k.strip(), v.strip())
    if set_:
        handle.save_config(cfg)
    if json_ or not set_:
        print_json(cfg.to_dict())
    else:
        out.print("config saved")


@crowd_app.command("status")
def status_cmd(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Progress per round: items, open items, targets, submitted, in progress, review states.

    Example: kyokan crowd status --db crowd.db
    """
    from kyokan.crowd.queries import progress

    prog = progress(_db(db))
    if json_:
        print_json(prog)
        return
    table = Table("round", "items", "open", "target", "submitted", "in progress", "review states")
    for kind, p in prog.items():
        table.add_row(kind, str(p["items"]), str(p["open"]), str(p["target"]), str(p["submitted"]),
                      str(p["reserved"]), ", ".join(f"{k} {v}" for k, v in sorted(p["statuses"].items())))
    out.print(table)


@crowd_app.command("screen")
def screen_cmd(
    judge: str = typer.Option(..., "--judge", help="Model spec for the harmlessness judge (see kyokan models)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for openai: specs."),
    threshold: int = typer.Option(2, "--threshold", help="Flag entries scored at or below this (1–5)."),
    kind: str = typer.Option(None, "--kind", help="situation or dialogue (default: both)."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Score pending entries' harmlessness with an LLM judge and flag low scorers for the lead.

    Example: kyokan crowd screen --db crowd.db --judge openai:gpt-4o-mini --threshold 2
    """
    from kyokan.crowd.judge_screen import screen_pending
    from kyokan.models import load_model  # type: ignore[attr-defined]

    model = load_model(judge, base_url=base_url)
    res = screen_pending(_db(db), model, threshold=threshold, kind=kind)
    if json_:
        print_json(res)
    else:
        out.print(f"scored {res['scored']}, flagged {res['flagged']}, unscored {res['unscored']}")


@crowd_app.command("export")
def export_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="Dialogues JSONL (kyokan format)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    situations: Path = typer.Option(None, "--situations", help="Also write the approved situations here (JSONL)."),
    ratings: Path = typer.Option(None, "--ratings", help="Also write the ratings here (JSONL)."),
    raw_worker_ids: bool = typer.Option(False, "--raw-worker-ids", help="Keep platform worker ids (default: salted pseudonyms)."),
    include_pending_ratings: bool = typer.Option(False, "--include-pending-ratings", help="Also write ratings not reviewed yet (each row says its review state)."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Write approved dialogues as kyokan records (valid for `kyokan data validate`) plus OUT.provenance.json (out.jsonl → out.provenance.json).

    Example: kyokan crowd export --db crowd.db -o emplifai.jsonl --situations situations.jsonl
    """
    from kyokan.crowd.exporting import export

    summary = export(_db(db), output, situations_out=situations, ratings_out=ratings, raw_worker_ids=raw_worker_ids,
                     include_pending_ratings=include_pending_ratings)
    if json_:
        print_json({k: v for k, v in summary.items() if k != "provenance"})
    else:
        out.print(f"{summary['dialogues']} approved dialogues → {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(crowd_app, name="crowd")
