"""SQLAlchemy models for the durable call log (calls, their events, published flow versions).

The schema itself is owned by the Alembic migrations in ``ivr_server/migrations``; these
models must stay in step with them (tests/test_migrations.py compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints: identical names on SQLite and PostgreSQL, and SQLite batch
# migrations can only alter constraints that have names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CALL_STATUSES = ("in-progress", "completed", "busy", "no-answer", "failed", "canceled")
CALL_OUTCOMES = ("self-served", "transferred", "abandoned", "callback", "failed", "closed")
ROLES = ("supervisor", "ops", "admin")  # each role may do all the ones before it, and more


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite has no time zones: ``DateTime(timezone=True)`` comes back naive there. We store
    UTC everywhere (naive input is taken to be UTC) so SQLite's text comparison orders
    correctly, and attach UTC on the way out so callers never see a naive datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.tzinfo is UTC:  # PostgreSQL's answer in a UTC session: nothing to convert
            return value
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Call(Base):
    """One phone call. Caller details are NULL when only the call's end is known (recovery)."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    account_sid: Mapped[str | None] = mapped_column(String(64))
    from_number: Mapped[str | None] = mapped_column(String(64), index=True)
    to_number: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str | None] = mapped_column(String(32))
    flow: Mapped[str | None] = mapped_column(String(100))
    flow_version: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="in-progress")
    outcome: Mapped[str | None] = mapped_column(String(20))
    duration: Mapped[int | None] = mapped_column(Integer)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queue: Mapped[str | None] = mapped_column(String(64), index=True)  # the queue it joined

    def __repr__(self) -> str:
        return f"<Call {self.call_sid} {self.status}>"


class CallEvent(Base):
    """One step of a call's timeline. No foreign key: a recovery may write events first."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime]
    node: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def __repr__(self) -> str:
        return f"<CallEvent {self.call_sid} {self.kind} {self.node}>"


class FlowVersion(Base):
    """A published flow file, kept so a call's timeline can show the exact flow it ran."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<FlowVersion {self.flow}@{self.version}>"


class SmsMessage(Base):
    """One text message, either way, with its call (if any) and its delivery status."""

    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed, not unique: Twilio's SIDs are, but a contract mock answers one example SID.
    message_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    direction: Mapped[str] = mapped_column(String(10))  # outbound, inbound
    kind: Mapped[str] = mapped_column(String(32))  # wait_estimate, survey_question, reply, ...
    to_number: Mapped[str] = mapped_column(String(32), index=True)
    from_number: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    # queued, sent, delivered, failed, ...; indexed: the worker looks for pending ones
    status: Mapped[str] = mapped_column(String(20), index=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<SmsMessage {self.direction} {self.kind} {self.status}>"


class SmsOptOut(Base):
    """A number's latest STOP or START: honoured before every send, kept for good."""

    __tablename__ = "sms_opt_outs"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)  # E.164
    opted_out: Mapped[bool]
    keyword: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsSurvey(Base):
    """A post-call survey: asked once per call, answered (or not) by text."""

    __tablename__ = "sms_surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), index=True)  # E.164
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime | None]


class CallbackRequest(Base):
    """A promise to call someone back, durable across restarts; its state machine lives in
    callbacks.states and every change is also an event in the original call's timeline.

    `active_key` ("number|queue") is set while the request is active and NULL once final:
    a unique column (NULLs never collide) makes "one active callback per number and queue"
    hold across processes on SQLite and PostgreSQL alike."""

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), index=True)  # E.164
    queue: Mapped[str] = mapped_column(String(64))
    active_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(20))  # offer, abandoned, sms
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)  # the original call
    flow: Mapped[str | None] = mapped_column(String(100))
    caller_id: Mapped[str | None] = mapped_column(String(64))  # the number the caller dialled
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    place_at: Mapped[datetime | None]  # when they joined the queue: their virtual place
    predicted_at: Mapped[datetime | None]  # when they would have reached an agent
    due_at: Mapped[datetime | None]  # the next time the job looks at it
    seq: Mapped[int] = mapped_column(Integer, default=0)  # which scheduled job is current
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dial_token: Mapped[str | None] = mapped_column(String(32))
    dial_sid: Mapped[str | None] = mapped_column(String(64))
    dial_started_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<CallbackRequest {self.id} {self.queue} {self.state}>"


class User(Base):
    """Someone who signs in to the pages under /admin. Disabled users are kept, never deleted,
    so the audit trail keeps its names."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # one of ROLES
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


class AuditEvent(Base):
    """Who did what on the admin pages or command line: sign-ins, reveals, publications."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def __repr__(self) -> str:
        return f"<AuditEvent {self.action} {self.target} by {self.username}>"
