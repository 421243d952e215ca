"""Pooled PostgreSQL connections: a dead one is found before a webhook uses it."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ivr_server import db

URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not URL.startswith(("postgresql", "postgres:")),
                                reason="needs PostgreSQL (DATABASE_URL)")


def _killed_pooled_connection(monkeypatch: pytest.MonkeyPatch, rest: float) -> tuple:
    monkeypatch.setattr(db, "PING_AFTER_IDLE", rest)
    engine = db.make_engine(URL, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    killer = db.make_engine(URL)
    with killer.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    return engine, pid


def test_a_rested_connection_killed_by_the_server_is_replaced_unseen(monkeypatch):
    engine, pid = _killed_pooled_connection(monkeypatch, rest=0.0)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    engine.dispose()


def test_a_busy_connection_is_not_pinged_and_one_killed_in_use_fails_once(monkeypatch):
    engine, pid = _killed_pooled_connection(monkeypatch, rest=3600.0)
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # no ping: the first use finds it dead
    with engine.connect() as conn:  # the pool threw it away: the next use is fine
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    engine.dispose()
