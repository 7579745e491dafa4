"""The data-collection web app (EmplifAI §3.2–3.4): situation and dialogue rounds with
quota-balanced random assignment, review workflow, rating tasks, export to kyokan records.

Heavy web imports (Starlette, Jinja2) load only when ``create_app`` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kyokan.crowd.assignment import (
        Assignment,
        NoTask,
        SubmitResult,
        assign,
        create_workers,
        extend,
        register_worker,
        release,
        reset_worker_key,
        set_blocked,
        submit,
    )
    from kyokan.crowd.config import CrowdConfig
    from kyokan.crowd.db import CrowdDB, downgrade, head_revision, normalize_url, upgrade
    from kyokan.crowd.errors import Conflict, CrowdError, Forbidden, NotFound
    from kyokan.crowd.exporting import collect, export
    from kyokan.crowd.reviewing import (
        ACTIONS,
        Actor,
        add_user,
        authenticate,
        change_password,
        rejection_stats,
        review,
        set_user_active,
    )
    from kyokan.crowd.screen import (
        KeywordScreener,
        PersonalDataScreener,
        judge_harmlessness,
        prescreen,
        register_screener,
    )
    from kyokan.crowd.tasks import (
        create_dialogue_tasks,
        create_rating_tasks,
        create_situation_tasks,
        import_situations,
        read_rating_packets,
        read_situation_file,
    )

#: name -> module, imported on first use: `import kyokan.crowd` (and so every `kyokan` command)
#: does not pay for SQLAlchemy at start-up
_LAZY: dict[str, str] = {
    "Assignment": "kyokan.crowd.assignment",
    "NoTask": "kyokan.crowd.assignment",
    "SubmitResult": "kyokan.crowd.assignment",
    "assign": "kyokan.crowd.assignment",
    "create_workers": "kyokan.crowd.assignment",
    "extend": "kyokan.crowd.assignment",
    "register_worker": "kyokan.crowd.assignment",
    "release": "kyokan.crowd.assignment",
    "reset_worker_key": "kyokan.crowd.assignment",
    "set_blocked": "kyokan.crowd.assignment",
    "submit": "kyokan.crowd.assignment",
    "CrowdConfig": "kyokan.crowd.config",
    "CrowdDB": "kyokan.crowd.db",
    "downgrade": "kyokan.crowd.db",
    "head_revision": "kyokan.crowd.db",
    "normalize_url": "kyokan.crowd.db",
    "upgrade": "kyokan.crowd.db",
    "Conflict": "kyokan.crowd.errors",
    "CrowdError": "kyokan.crowd.errors",
    "Forbidden": "kyokan.crowd.errors",
    "NotFound": "kyokan.crowd.errors",
    "collect": "kyokan.crowd.exporting",
    "export": "kyokan.crowd.exporting",
    "ACTIONS": "kyokan.crowd.reviewing",
    "Actor": "kyokan.crowd.reviewing",
    "add_user": "kyokan.crowd.reviewing",
    "authenticate": "kyokan.crowd.reviewing",
    "change_password": "kyokan.crowd.reviewing",
    "rejection_stats": "kyokan.crowd.reviewing",
    "review": "kyokan.crowd.reviewing",
    "set_user_active": "kyokan.crowd.reviewing",
    "KeywordScreener": "kyokan.crowd.screen",
    "PersonalDataScreener": "kyokan.crowd.screen",
    "judge_harmlessness": "kyokan.crowd.screen",
    "prescreen": "kyokan.crowd.screen",
    "register_screener": "kyokan.crowd.screen",
    "create_dialogue_tasks": "kyokan.crowd.tasks",
    "create_rating_tasks": "kyokan.crowd.tasks",
    "create_situation_tasks": "kyokan.crowd.tasks",
    "import_situations": "kyokan.crowd.tasks",
    "read_rating_packets": "kyokan.crowd.tasks",
    "read_situation_file": "kyokan.crowd.tasks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def create_app(db: CrowdDB | str, **kw: Any) -> Any:
    """The ASGI app (see ``kyokan.crowd.web.create_app``)."""
    from kyokan.crowd.web import create_app as _create

    return _create(db, **kw)


def init_db(url: str, *, config: CrowdConfig | None = None) -> CrowdDB:
    """Create or migrate the schema and store the config (defaults on first init)."""
    from kyokan.crowd.config import CrowdConfig
    from kyokan.crowd.db import CrowdDB, upgrade

    db = CrowdDB(url)
    upgrade(db)
    if config is not None or db.setting("config") is None:
        db.save_config(config or CrowdConfig())
    return db


__all__ = [
    "ACTIONS",
    "Actor",
    "Assignment",
    "Conflict",
    "CrowdConfig",
    "CrowdDB",
    "CrowdError",
    "Forbidden",
    "KeywordScreener",
    "NoTask",
    "NotFound",
    "PersonalDataScreener",
    "SubmitResult",
    "add_user",
    "assign",
    "authenticate",
    "change_password",
    "collect",
    "create_app",
    "create_dialogue_tasks",
    "create_rating_tasks",
    "create_situation_tasks",
    "create_workers",
    "downgrade",
    "export",
    "extend",
    "head_revision",
    "import_situations",
    "init_db",
    "judge_harmlessness",
    "normalize_url",
    "prescreen",
    "read_rating_packets",
    "read_situation_file",
    "register_screener",
    "register_worker",
    "rejection_stats",
    "release",
    "reset_worker_key",
    "review",
    "set_blocked",
    "set_user_active",
    "submit",
    "upgrade",
]
