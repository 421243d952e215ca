"""Callbacks: durable callback requests with their state machine.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Hand-written; tests/test_migrations.py checks it against ivr_server.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("active_key", sa.String(100), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("flow", sa.String(100), nullable=True),
        sa.Column("caller_id", sa.String(64), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("place_at", TIMESTAMP, nullable=True),
        sa.Column("predicted_at", TIMESTAMP, nullable=True),
        sa.Column("due_at", TIMESTAMP, nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dial_token", sa.String(32), nullable=True),
        sa.Column("dial_sid", sa.String(64), nullable=True),
        sa.Column("dial_started_at", TIMESTAMP, nullable=True),
        sa.Column("last_outcome", sa.String(20), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callbacks"),
        # One active request per number and queue (NULL once final: NULLs never collide).
        sa.UniqueConstraint("active_key", name="uq_callbacks_active_key"),
    )
    op.create_index("ix_callbacks_number", "callbacks", ["number"])
    op.create_index("ix_callbacks_state", "callbacks", ["state"])
    op.create_index("ix_callbacks_call_sid", "callbacks", ["call_sid"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_call_sid", table_name="callbacks")
    op.drop_index("ix_callbacks_state", table_name="callbacks")
    op.drop_index("ix_callbacks_number", table_name="callbacks")
    op.drop_table("callbacks")
