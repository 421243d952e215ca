"""Call log: calls, call events and published flow versions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written; tests/test_migrations.py checks it against ivr_server.models on SQLite and
PostgreSQL. Constraint and index names follow models.NAMING_CONVENTION.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stored as UTC; models.UTCDateTime attaches the zone again on SQLite.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        # Caller details stay NULL when a call is known only from its end (recovery).
        sa.Column("account_sid", sa.String(64), nullable=True),
        sa.Column("from_number", sa.String(64), nullable=True),
        sa.Column("to_number", sa.String(64), nullable=True),
        sa.Column("direction", sa.String(32), nullable=True),
        sa.Column("flow", sa.String(100), nullable=True),
        sa.Column("flow_version", sa.String(32), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("call_sid", name="uq_calls_call_sid"),
    )
    # previous_calls() counts by number and time; the admin list sorts by start.
    op.create_index("ix_calls_from_number", "calls", ["from_number"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])

    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("node", sa.String(100), nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_events"),
        # The writer's idempotency key: replaying a backlog never duplicates an event.
        sa.UniqueConstraint("event_id", name="uq_call_events_event_id"),
    )
    op.create_index("ix_call_events_call_sid", "call_events", ["call_sid"])

    op.create_table(
        "flow_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_versions"),
        sa.UniqueConstraint("flow", "version", name="uq_flow_versions_flow_version"),
    )


def downgrade() -> None:
    op.drop_table("flow_versions")
    op.drop_index("ix_call_events_call_sid", table_name="call_events")
    op.drop_table("call_events")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_index("ix_calls_from_number", table_name="calls")
    op.drop_table("calls")
