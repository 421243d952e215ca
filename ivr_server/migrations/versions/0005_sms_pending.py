"""SMS: find texts still pending (the worker resends those whose job Redis lost).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Hand-written; tests/test_migrations.py checks it against ivr_server.models.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sms_messages_status", "sms_messages", ["status"])


def downgrade() -> None:
    op.drop_index("ix_sms_messages_status", table_name="sms_messages")
