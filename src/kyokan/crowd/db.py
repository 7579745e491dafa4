"""Connections and transactions for SQLite (WAL) and PostgreSQL, and schema migrations.

Writes that must be atomic (assignment, submission, review) run in ``CrowdDB.write()``:
on SQLite a ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so two writers
never interleave), serialised inside the process by a lock so threads queue instead of
busy-sleeping; on PostgreSQL a READ COMMITTED transaction where the code takes row locks
(``SELECT … FOR UPDATE SKIP LOCKED``) and checks conditional ``UPDATE`` row counts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from kyokan.crowd.config import CrowdConfig
from kyokan.crowd.models import Setting
from kyokan.errors import KyokanError

MIGRATIONS = Path(__file__).parent / "migrations"
DB_ENV = "KYOKAN_CROWD_DB"
SYNC_ENV = "KYOKAN_CROWD_SQLITE_SYNC"


def normalize_url(url: str | os.PathLike[str] | None) -> str:
    """``--db`` value → SQLAlchemy URL: a bare path is SQLite; ``postgresql://`` uses psycopg 3."""
    raw = str(url) if url is not None else os.environ.get(DB_ENV, "")
    if not raw:
        raise KyokanError(f"no database given: pass --db URL or set {DB_ENV}")
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    try:
        u = make_url(raw)
    except ArgumentError as e:
        raise KyokanError(f"--db {raw!r}: not a database URL ({e})") from None
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise KyokanError(f"--db {raw!r}: only sqlite and postgresql are supported")
    return raw


def redact(url: str) -> str:
    """The URL without its password (for logs and provenance)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<bad url>"


class CrowdDB:
    """One database: engine, write/read transactions, the stored config."""

    def __init__(self, url: str | os.PathLike[str] | None, *, pool_size: int = 40,
                 sqlite_synchronous: str | None = None) -> None:
        self.url = normalize_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._config: CrowdConfig | None = None
        self._config_at = 0.0
        if self.dialect == "sqlite":
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=20,
                connect_args={"check_same_thread": False, "timeout": 30})
            # WAL + NORMAL: a commit survives a crash of the app; only a power loss or OS crash can
            # undo the last commits. FULL also fsyncs every commit (≈7 ms each on a typical VM disk).
            sync = (sqlite_synchronous or os.environ.get(SYNC_ENV) or "NORMAL").upper()
            if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
                raise KyokanError(f"{SYNC_ENV}={sync!r}: use NORMAL, FULL or EXTRA")

            @event.listens_for(self.engine, "connect")
            def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.isolation_level = None  # let us issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={sync}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            @event.listens_for(self.engine, "begin")
            def _on_begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if getattr(self._local, "writing", False) else "BEGIN")
        else:
            # a pool as large as the server's thread pool: connections past pool_size are closed
            # when returned, and opening one (a new PostgreSQL backend) costs more than a request.
            # No pre-ping (a round trip per checkout): a connection lost under us is retried.
            self.engine = create_engine(self.url, pool_size=pool_size, max_overflow=20, pool_recycle=3600)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction, committed when the block ends without an exception."""
        if self.dialect == "sqlite":
            with self._lock:
                self._local.writing = True
                try:
                    with Session(self.engine, expire_on_commit=False) as s, s.begin():
                        yield s
                finally:
                    self._local.writing = False
        else:
            with Session(self.engine, expire_on_commit=False) as s, s.begin():
                yield s

    @contextmanager
    def write_conn(self) -> Iterator[Connection]:
        """Like ``write()`` but a Core connection (the hot paths: assignment, submission)."""
        if self.dialect == "sqlite":
            with self._lock:
                self._local.writing = True
                try:
                    with self.engine.begin() as conn:
                        yield conn
                finally:
                    self._local.writing = False
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (never takes the SQLite write lock)."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s  # closing the session rolls the (read-only) transaction back

    # --- config ---------------------------------------------------------------------------
    def config(self, *, fresh: bool = False, ttl: float = 5.0) -> CrowdConfig:
        """The stored config, re-read at most every ``ttl`` seconds (so ``kyokan crowd config``
        reaches running servers)."""
        import time

        if self._config is None or fresh or time.monotonic() - self._config_at > ttl:
            with self.read() as s:
                row = s.get(Setting, "config")
                self._config = CrowdConfig.from_dict(row.value if row else None)
            self._config_at = time.monotonic()
        return self._config

    def save_config(self, cfg: CrowdConfig) -> None:
        cfg.check()
        with self.write() as s:
            row = s.get(Setting, "config")
            if row is None:
                s.add(Setting(key="config", value=cfg.to_dict()))
            else:
                row.value = cfg.to_dict()
        self._config = cfg

    def setting(self, key: str, default: Any = None) -> Any:
        with self.read() as s:
            v = s.scalar(select(Setting.value).where(Setting.key == key))
        return default if v is None else v

    # --- schema ---------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The schema revision stamped in the database (None before ``init``)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def require_schema(self) -> None:
        rev, head = self.revision(), head_revision()
        if rev is None:
            raise KyokanError(f"{redact(self.url)}: not initialised; run: kyokan crowd init --db URL")
        if rev != head:
            raise KyokanError(f"{redact(self.url)}: schema revision {rev}, this kyokan needs {head}; "
                              "run: kyokan crowd init --db URL (it migrates)")

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(db: CrowdDB, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema to ``revision``; returns (before, after)."""
    from alembic import command

    before = db.revision()
    cfg = _alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, db.revision()


def downgrade(db: CrowdDB, revision: str = "base") -> None:
    from alembic import command

    cfg = _alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
