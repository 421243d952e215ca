"""SMS: messages either way, opt-outs, post-call surveys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Hand-written; tests/test_migrations.py checks it against ivr_server.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sms_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sa.String(64), nullable=True),  # Twilio's, once accepted
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("from_number", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sms_messages"),
    )
    # Status callbacks find a message by its SID (unique at Twilio; not enforced here, as
    # a contract mock answers one example SID); a call's timeline lists its messages; caps
    # count a number's messages.
    op.create_index("ix_sms_messages_message_sid", "sms_messages", ["message_sid"])
    op.create_index("ix_sms_messages_call_sid", "sms_messages", ["call_sid"])
    op.create_index("ix_sms_messages_to_number", "sms_messages", ["to_number"])

    op.create_table(
        "sms_opt_outs",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("keyword", sa.String(20), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_sms_opt_outs"),
    )

    op.create_table(
        "sms_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("asked_at", TIMESTAMP, nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("answered_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sms_surveys"),
        sa.UniqueConstraint("call_sid", name="uq_sms_surveys_call_sid"),
    )
    # "surveyed in the last 30 days" looks a number up.
    op.create_index("ix_sms_surveys_number", "sms_surveys", ["number"])


def downgrade() -> None:
    op.drop_index("ix_sms_surveys_number", table_name="sms_surveys")
    op.drop_table("sms_surveys")
    op.drop_table("sms_opt_outs")
    op.drop_index("ix_sms_messages_to_number", table_name="sms_messages")
    op.drop_index("ix_sms_messages_call_sid", table_name="sms_messages")
    op.drop_index("ix_sms_messages_message_sid", table_name="sms_messages")
    op.drop_table("sms_messages")
