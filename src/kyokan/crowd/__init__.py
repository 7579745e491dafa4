"""The data-collection web app (EmplifAI §3.2–3.4): situation and dialogue rounds with
quota-balanced random assignment, review workflow, rating tasks, export to kyokan records.

Heavy web imports (Starlette, Jinja2) load only when ``create_app`` is called.
"""

from __future__ import annotations

from typing import Any

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


def create_app(db: CrowdDB | str, **kw: Any) -> Any:
    """The ASGI app (see ``kyokan.crowd.web.create_app``)."""
    from kyokan.crowd.web import create_app as _create

    return _create(db, **kw)


def init_db(url: str, *, config: CrowdConfig | None = None) -> CrowdDB:
    """Create or migrate the schema and store the config (defaults on first init)."""
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
