"""Engines, sessions and schema upgrades for the SQL store.

SQLite is the embedded default, PostgreSQL the production database; both run the same
Alembic migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalize_url(url: str | URL) -> URL:
    """Map bare ``postgresql://`` (and Heroku-style ``postgres://``) URLs to psycopg 3.

    SQLAlchemy's default PostgreSQL driver is psycopg2, which is not installed.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine tuned for its backend.

    SQLite: WAL and a busy timeout, so several processes can share the file.
    PostgreSQL: liveness checks and a connect timeout, so a dead server fails fast.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        connect_args = dict(kwargs.pop("connect_args", {}))
        if "connect_timeout" not in parsed.query:
            # A webhook must answer Twilio within seconds; never hang on a dead database.
            connect_args.setdefault("connect_timeout", 5)
        return create_engine(parsed, connect_args=connect_args, **kwargs)
    return create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (admin pages) run while a webhook writes; busy_timeout makes
    # concurrent writers from several processes wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (callers read rows after writing)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str | URL) -> AlembicConfig:
    """An Alembic config built in code, so no alembic.ini is needed at run time."""
    url_text = normalize_url(url).render_as_string(hide_password=False)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates '%': escape it (URLs carry %-encoded characters).
    cfg.set_main_option("sqlalchemy.url", url_text.replace("%", "%%"))
    cfg.attributes["url"] = url_text
    return cfg


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; safe to run on every start (a no-op when current)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Step the schema back (tests and rollbacks); ``"base"`` drops every table."""
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
