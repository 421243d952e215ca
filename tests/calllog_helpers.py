"""Fixtures and helpers shared by the call-log tests (imported by them; not a conftest)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from ivr_server import db
from ivr_server.calllog import CallLog
from ivr_server.models import Call, CallEvent, FlowVersion

from .db_fixtures import (
    fresh_database,
    key_prefix,
    redis_client,
    redis_server,
    unreachable_database_url,
)

# The fixtures, for the call-log test modules' `from .calllog_helpers import *`: pytest
# finds a fixture by its name in the test module.
__all__ = ["broken_sessions", "database_url", "key_prefix", "module_sessions", "redis_client",
           "redis_server", "sessions"]

T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        db.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def module_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(database_url)
    yield db.make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sessions(module_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with module_sessions.begin() as session:
        for model in (CallEvent, Call, FlowVersion):
            session.execute(delete(model))
    return module_sessions


@pytest.fixture
def broken_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a database that really cannot be reached (OperationalError on connect)."""
    # Not make_engine: for SQLite it would create the missing folder.
    engine = create_engine(db.normalize_url(unreachable_database_url(tmp_path)))
    yield db.make_session_factory(engine)
    engine.dispose()


def make_log(sessions, redis_client, key_prefix, **kwargs) -> CallLog:
    kwargs.setdefault("retry_after", 0)
    return CallLog(sessions, redis_client, key_prefix, logging.getLogger("test.calllog"),
                   **kwargs)


def new_sid() -> str:
    return "CA" + uuid.uuid4().hex


def start(log: CallLog, sid: str, at: datetime = T0, number: str = "+15550001111") -> None:
    log.call_started(call_sid=sid, account_sid="AC" + "1" * 32, from_number=number,
                     to_number="+15559990000", direction="inbound", flow="main",
                     version="abc123", at=at)


def events_of(sessions, sid: str) -> list[CallEvent]:
    with sessions() as session:
        return list(session.scalars(
            select(CallEvent).where(CallEvent.call_sid == sid).order_by(CallEvent.id)))


def call_of(sessions, sid: str) -> Call | None:
    with sessions() as session:
        return session.scalar(select(Call).where(Call.call_sid == sid))


def backlog(redis_client: redis.Redis, log: CallLog) -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange(log.backlog_key, 0, -1)]
