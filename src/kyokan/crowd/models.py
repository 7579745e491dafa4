"""The crowd database schema (SQLAlchemy 2 declarative). Changes go through an Alembic revision
in ``kyokan/crowd/migrations/versions`` — never edit a released revision.

Times are UNIX seconds (float) so lease arithmetic is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")

#: task kinds: round 1 situations, round 2 dialogues, round 3 ratings
KINDS = ("situation", "dialogue", "rating")
#: review states of a submission
STATUSES = ("pending", "approved", "rejected", "flagged", "removed")
ROLES = ("reviewer", "lead", "admin")


class Base(DeclarativeBase):
    pass


class Worker(Base):
    """A crowd worker, identified by the platform's worker id (from the URL)."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: scrypt hash of the worker's recovery key (trust on first use binds a browser to the id)
    key_hash: Mapped[str] = mapped_column(String(200))
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    #: the network the id was registered from (``kyokan.crowd.security.client_key``); None when
    #: an admin created it
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)


class User(Base):
    """A reviewer, lead or admin who logs in with a password."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)


class Item(Base):
    """One thing to collect ``target`` answers for: an emotion (round 1), an emotion–situation pair
    (round 2) or a rating packet (round 3). ``n_reserved`` counts live leases, ``n_submitted``
    kept submissions; ``n_submitted + n_reserved <= target`` holds at every commit."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    emotion: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lang: Mapped[str] = mapped_column(String(16), default="ja")
    situation_uid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    target: Mapped[int] = mapped_column(Integer)
    n_submitted: Mapped[int] = mapped_column(Integer, default=0)
    n_reserved: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: a round-2 item whose situation left "approved": it takes no new workers until the situation
    #: is approved again (independent of ``closed``, which follows the counts)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_items_open", "kind", "closed"),
        CheckConstraint("n_submitted >= 0 AND n_reserved >= 0", name="ck_items_counts"),
    )


#: lease states: active (held), submitted, expired (timed out; may still be submitted while the
#: item has room), released (the worker skipped it), revoked (the worker was blocked or the item
#: withdrawn). Only active and expired leases can be submitted.
LEASE_STATES = ("active", "submitted", "expired", "released", "revoked")


class Reservation(Base):
    """A lease of one item to one worker. A worker holds at most one lease per item, ever."""

    __tablename__ = "reservations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    worker_id: Mapped[str] = mapped_column(ForeignKey("workers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    #: one of LEASE_STATES
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    #: the network the lease was taken from (live leases per client are bounded)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        UniqueConstraint("item_id", "worker_id", name="uq_reservation_item_worker"),
        Index("ix_reservations_status_expiry", "status", "expires_at"),
        Index("ix_reservations_worker", "worker_id", "kind", "status"),
        Index("ix_reservations_client", "client", "status", "expires_at"),
    )


class Submission(Base):
    """A written situation, dialogue or rating. ``content`` is ``{"text"}``, ``{"turns"}`` or
    ``{"ratings", "comment"}``; ``version`` counts reviewer edits (history in ``edits``)."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(ForeignKey("workers.id"), nullable=True)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"), nullable=True, unique=True)
    emotion: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lang: Mapped[str] = mapped_column(String(16), default="ja")
    situation_uid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: pre-screen results: {"keywords": [...], "judge": {...}}
    screen: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: crowd | import
    source: Mapped[str] = mapped_column(String(16), default="crowd")
    version: Mapped[int] = mapped_column(Integer, default=1)
    was_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_submissions_worker", "worker_id"),
        Index("ix_submissions_kind_status", "kind", "status"),
        Index("ix_submissions_situation", "situation_uid"),
    )


class Edit(Base):
    """One reviewer edit: the content before and after (the full history of a text)."""

    __tablename__ = "edits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    editor: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any]] = mapped_column(JSONType)
    after: Mapped[dict[str, Any]] = mapped_column(JSONType)
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[float] = mapped_column(Float)


class LedgerEntry(Base):
    """Compensation owed to a worker for one submission; ``void`` once the submission is rejected."""

    __tablename__ = "ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("workers.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(8))
    #: payable | void
    status: Mapped[str] = mapped_column(String(16), default="payable")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class AuditEntry(Base):
    """Who did what to which record, when (reviews, edits, decisions, task creation, logins)."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (Index("ix_audit_action", "action", "id"),)


class UserSession(Base):
    """A reviewer's login. The cookie carries a random id; only its SHA-256 is stored. A session
    ends at ``expires_at`` (absolute), after the idle limit, or when revoked (logout, password or
    role change, account disabled)."""

    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float)
    seen_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_user_sessions_user", "user_id"),)


class AuthThrottle(Base):
    """Failed logins of one key (``ip:…``, ``ipacct:…``, ``acct:…``, ``dev:…``) and the time
    until which its attempts are refused without checking a password."""

    __tablename__ = "auth_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float] = mapped_column(Float)


class Setting(Base):
    """Key/value settings (the collection config, the worker-pseudonym salt)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
