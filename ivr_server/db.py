"""Engines, sessions and schema upgrades for the SQL store.

SQLite is the embedded default, PostgreSQL the production database; both run the same
Alembic migrations.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
PING_AFTER_IDLE = 5.0  # seconds a pooled PostgreSQL connection may rest before a liveness ping


def normalize_url(url: str | URL) -> URL:
    """Map bare ``postgresql://`` (and Heroku-style ``postgres://``) URLs to psycopg 3.

    SQLAlchemy's default PostgreSQL driver is psycopg2, which is not installed.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, *, statement_timeout: float = 0.0, **kwargs: Any) -> Engine:
    """An engine tuned for its backend.

    SQLite: WAL and a busy timeout, so several processes can share the file.
    PostgreSQL: a connect timeout, so a dead server fails fast, and a liveness ping for a
    connection that rested more than PING_AFTER_IDLE seconds (a restart while idle is the
    usual way one dies; a busy pool would otherwise ping on every checkout, doubling the
    round trips of a webhook's short transactions). One that dies in use is invalidated
    with the pool by SQLAlchemy, and the call log keeps what it could not write.
    `statement_timeout` (seconds, PostgreSQL): the server cancels a longer statement (one
    stuck on a lock, a stalled server), and a free pooled connection is awaited no longer,
    so a webhook never hangs on the database; migrations leave it at 0, no limit.
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
        connect_args = dict(kwargs.pop("connect_args", {}))
        if "connect_timeout" not in parsed.query:
            # A webhook must answer Twilio within seconds; never hang on a dead database.
            connect_args.setdefault("connect_timeout", 5)
        if statement_timeout > 0:
            # Sent with the connection (no round trip), after any options the URL has.
            ms = max(1, round(statement_timeout * 1000))
            options = " ".join(filter(None, (connect_args.get("options") or
                                             parsed.query.get("options"),
                                             f"-c statement_timeout={ms}")))
            connect_args["options"] = options
            kwargs.setdefault("pool_timeout", statement_timeout)
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            event.listen(engine, "checkout", _ping_if_rested(engine))
            event.listen(engine, "checkin", _note_rest)
        return engine
    return create_engine(parsed, **kwargs)


def _ping_if_rested(engine: Engine) -> Any:
    def ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        rested = record.info.get("rest_since")
        if rested is None or time.monotonic() - rested < PING_AFTER_IDLE:
            return  # new, or back from use moments ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is dead: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection did not answer its ping")

    return ping


def _note_rest(_dbapi_connection: Any, record: Any) -> None:
    record.info["rest_since"] = time.monotonic()


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


def without_waiting_for_disk(db: Session | Connection) -> None:
    """For a write whose loss in a database crash costs at most a text (a queued message, a
    survey's claim): PostgreSQL commits it without waiting for its WAL to reach the disk.
    Nothing is ever corrupted; a crash may forget the last moments' such writes. Under load
    that disk flush was most of a webhook's latency tail. Bookings, opt-outs and the call log
    keep waiting for it."""
    dialect = db.dialect if isinstance(db, Connection) else db.get_bind().dialect
    if dialect.name == "postgresql":
        db.execute(text("SET LOCAL synchronous_commit TO OFF"))


def engine_of(session_factory: sessionmaker[Session]) -> Engine:
    """The engine behind a session factory: hot paths run prebuilt Core statements on it,
    which costs a fifth of the CPU of an ORM session building its query each time."""
    return session_factory.kw["bind"]


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (callers read rows after writing)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def configured_engine(config: Any) -> Engine:
    """The engine of a server or worker process (an ivr_server.config.Config): the
    configured database, its statements bounded by [database] statement_timeout."""
    return make_engine(config.database_url, statement_timeout=config.database.statement_timeout)


def make_report_sessions(engine: Engine, timeout: float) -> sessionmaker[Session]:
    """Sessions for reports (the admin pages' dashboard, call lists, exports) over a week of
    calls: each transaction may run `timeout` seconds (0: no limit), not the webhooks' few."""
    factory = make_session_factory(engine)
    if engine.dialect.name == "postgresql":
        ms = max(0, round(timeout * 1000))

        @event.listens_for(factory, "after_begin")
        def _longer(_session: Session, _transaction: Any, connection: Connection) -> None:
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")

    return factory


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
