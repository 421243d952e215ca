"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, inspect, text

from ivr_server import db, models

from .db_fixtures import POSTGRES, fresh_database

CALL_LOG_TABLES = {"calls", "call_events", "flow_versions"}


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()


def schema_diffs(url: str, metadata: MetaData) -> list:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_upgrade_takes_an_empty_database_to_head_with_the_call_log_tables(empty_url):
    assert db.current_revision(empty_url) is None

    db.upgrade(empty_url)

    assert db.current_revision(empty_url) == head_revision(empty_url)
    engine = db.make_engine(empty_url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) >= CALL_LOG_TABLES
        assert {ix["name"] for ix in inspector.get_indexes("calls")} >= {
            "ix_calls_from_number", "ix_calls_started_at"}
        assert "ix_call_events_call_sid" in {
            ix["name"] for ix in inspector.get_indexes("call_events")}
    finally:
        engine.dispose()


def test_models_and_migrations_describe_the_same_schema(empty_url):
    db.upgrade(empty_url)

    assert schema_diffs(empty_url, models.Base.metadata) == []


def test_the_schema_comparison_does_notice_a_difference(empty_url):
    """Guards the test above: an empty diff must mean agreement, not a blind comparison."""
    db.upgrade(empty_url)
    changed = MetaData(naming_convention=models.NAMING_CONVENTION)
    for table in models.Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["calls"].append_column(Column("extra", Integer))

    diffs = schema_diffs(empty_url, changed)

    assert [d[0] for d in diffs] == ["add_column"]


def test_upgrading_a_current_database_again_changes_nothing(empty_url):
    db.upgrade(empty_url)
    db.upgrade(empty_url)

    assert db.current_revision(empty_url) == head_revision(empty_url)


def test_downgrade_to_base_removes_the_tables_and_upgrade_restores_them(empty_url):
    db.upgrade(empty_url)
    db.downgrade(empty_url, "base")

    engine = db.make_engine(empty_url)
    try:
        assert not CALL_LOG_TABLES & set(inspect(engine).get_table_names())
        assert db.current_revision(empty_url) is None
        db.upgrade(empty_url)
        assert set(inspect(engine).get_table_names()) >= CALL_LOG_TABLES
    finally:
        engine.dispose()


@pytest.mark.skipif(not POSTGRES, reason="needs DATABASE_URL (PostgreSQL)")
def test_processes_upgrading_at_the_same_time_on_postgresql_all_succeed(empty_url):
    # Separate processes, as in production: Alembic's context is global to a process.
    script = "import sys; from ivr_server import db; db.upgrade(sys.argv[1])"
    runs = [subprocess.Popen([sys.executable, "-c", script, empty_url],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(3)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert db.current_revision(empty_url) == head_revision(empty_url)


def test_postgresql_urls_are_served_by_psycopg_3():
    assert db.normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert db.normalize_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert db.normalize_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"
    assert db.normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_engine_creates_its_folder_and_uses_wal_with_a_busy_timeout(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'new' / 'folder' / 'ivr.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert (tmp_path / "new" / "folder" / "ivr.sqlite3").exists()
    finally:
        engine.dispose()
