"""Initial crowd schema: workers, users, items, reservations, submissions, edits, ledger, audit,
settings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

J = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(200), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("emotion", sa.String(64), nullable=True),
        sa.Column("lang", sa.String(16), nullable=False),
        sa.Column("situation_uid", sa.String(100), nullable=True),
        sa.Column("payload", J, nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("n_submitted", sa.Integer(), nullable=False),
        sa.Column("n_reserved", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.CheckConstraint("n_submitted >= 0 AND n_reserved >= 0", name="ck_items_counts"),
    )
    op.create_index("ix_items_open", "items", ["kind", "closed"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("worker_id", sa.String(64), sa.ForeignKey("workers.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("item_id", "worker_id", name="uq_reservation_item_worker"),
    )
    op.create_index("ix_reservations_status_expiry", "reservations", ["status", "expires_at"])
    op.create_index("ix_reservations_worker", "reservations", ["worker_id", "kind", "status"])
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=True),
        sa.Column("worker_id", sa.String(64), sa.ForeignKey("workers.id"), nullable=True),
        sa.Column("reservation_id", sa.Integer(), sa.ForeignKey("reservations.id"), nullable=True, unique=True),
        sa.Column("emotion", sa.String(64), nullable=True),
        sa.Column("lang", sa.String(16), nullable=False),
        sa.Column("situation_uid", sa.String(100), nullable=True),
        sa.Column("content", J, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("screen", J, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("was_flagged", sa.Boolean(), nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_submissions_worker", "submissions", ["worker_id"])
    op.create_index("ix_submissions_kind_status", "submissions", ["kind", "status"])
    op.create_index("ix_submissions_situation", "submissions", ["situation_uid"])
    op.create_table(
        "edits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("editor", sa.String(64), nullable=False),
        sa.Column("before", J, nullable=False),
        sa.Column("after", J, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_edits_submission_id", "edits", ["submission_id"])
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("worker_id", sa.String(64), sa.ForeignKey("workers.id"), nullable=False),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id"), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_ledger_worker_id", "ledger", ["worker_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("detail", J, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", J, nullable=True),
    )


def downgrade() -> None:
    for t in ("settings", "audit", "ledger", "edits", "submissions", "reservations", "items",
              "users", "workers"):
        op.drop_table(t)
