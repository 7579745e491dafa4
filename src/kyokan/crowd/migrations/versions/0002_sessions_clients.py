"""Revocable staff sessions, login throttling, per-client lease bound, withdrawn items.

* ``user_sessions``: one row per login (the cookie carries a random id; the row holds its hash),
  revoked at logout, password change and role change;
* ``auth_throttle``: failed-login counters with back-off (per IP, per account, per device);
* ``reservations.client`` / ``workers.client``: the network a lease or a registration came from
  (bound on live leases per client);
* ``items.withdrawn``: a round-2 item whose situation is no longer approved takes no workers.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reservations") as b:
        b.add_column(sa.Column("client", sa.String(64), nullable=True))
    op.create_index("ix_reservations_client", "reservations", ["client", "status", "expires_at"])
    with op.batch_alter_table("workers") as b:
        b.add_column(sa.Column("client", sa.String(64), nullable=True))
    with op.batch_alter_table("items") as b:
        b.add_column(sa.Column("withdrawn", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_audit_action", "audit", ["action", "id"])
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
    )
    op.create_index("ix_user_sessions_user", "user_sessions", ["user_id"])
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_throttle")
    op.drop_index("ix_user_sessions_user", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_index("ix_audit_action", table_name="audit")
    with op.batch_alter_table("items") as b:
        b.drop_column("withdrawn")
    with op.batch_alter_table("workers") as b:
        b.drop_column("client")
    op.drop_index("ix_reservations_client", table_name="reservations")
    with op.batch_alter_table("reservations") as b:
        b.drop_column("client")
