"""A database that stops answering (a table locked by a long migration, a stalled server):
statements are cancelled after `[database] statement_timeout`, so webhooks still answer
Twilio in time and callers go on; the admin pages' reports may wait longer.

PostgreSQL only: a lock held by another connection is the real fault. (SQLite waits at
most its 5 s busy timeout for a writer.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ivr_server import create_app, db
from ivr_server.simulator import SimulatedCall

from .admin.conftest import PASSWORD, login, unique_name
from .conftest import OPEN_HOURS
from .db_fixtures import POSTGRES, fresh_database
from .helpers import answered, call_events, call_row
from .test_queue_calls import clock
from .test_sms_calls import CALLERS, QUEUE_FLOW, caller_number, queued, seed_history, texts

__all__ = ["clock"]  # the queue tests' clock fixture, which follows the caller

pytestmark = pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (DATABASE_URL)")
WEBHOOK_TIMEOUT = 0.5  # statement_timeout in these tests: short, so a run stays quick


@pytest.fixture
def stuck(config, clock, flows_dir, tmp_path) -> Iterator[tuple[Any, Callable[..., Any]]]:  # noqa: ANN001
    """(app, locked): an app on a fresh schema; `with locked("table"):` holds an exclusive
    lock on that table from another connection, as a long migration would."""
    with fresh_database(tmp_path) as url:
        db.upgrade(url)
        (flows_dir / "queued.yaml").write_text(QUEUE_FLOW)
        cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                                   numbers={CALLERS: "queued"}, settings=config.flows.settings)
               .with_section("sms", from_number="+15005550006", company="Acme",
                             wait_threshold=60, wait_min_change=120, wait_max_messages=2,
                             survey_min_call_seconds=10)
               .with_section("database", url=url, statement_timeout=WEBHOOK_TIMEOUT))
        app = create_app(cfg, clock=clock)
        state = app.extensions["ivr"].queues
        state.set_agents("support", 1, OPEN_HOURS.timestamp() - 4000)
        seed_history(state)
        for i in range(5):  # a line ahead, so the wait is long enough to text
            state.arrive("support", f"CAahead{i}", OPEN_HOURS.timestamp() - 100 + i)
        plain = make_url(url).set(drivername="postgresql").render_as_string(
            hide_password=False)

        @contextmanager
        def locked(table: str) -> Iterator[None]:
            with psycopg.connect(plain) as holder:
                holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                yield
                holder.rollback()

        yield app, locked
        app.extensions["ivr"].writer.drain()
        app.extensions["ivr"].redis.close()


def answered_while_locked(turn: Callable[[], Any]) -> Any:
    """A caller's turn, which must end while the lock is still held."""
    return answered(turn, within=30, hung="the webhook waited for the locked table")


def test_a_queued_caller_hears_their_place_while_the_texts_table_is_locked(stuck, clock):
    app, locked = stuck
    number = caller_number()
    with locked("sms_messages"):
        call: SimulatedCall = answered_while_locked(lambda: queued(app, clock, number))
        call.expect_heard("You are number 1 in line")
        assert call.waiting_for == "queue"  # still holding, not sent to the safe path
    errors = [e for e in call_events(app, call.call_sid) if e.kind == "sms_error"]
    assert errors and "database unavailable" in errors[0].data["error"]
    assert texts(app, call) == []
    call.wait(30)  # the lock is gone: the next wait poll texts the estimate after all
    [text] = texts(app, call)
    assert text.kind == "wait_estimate" and text.status == "queued"


def test_a_call_ends_and_leaves_the_queue_while_the_surveys_table_is_locked(stuck, clock):
    app, locked = stuck
    call = queued(app, clock, caller_number())
    call.wait(60)
    with locked("sms_surveys"):
        answered_while_locked(call.hangup)
    row = call_row(app, call.call_sid)
    assert row.ended_at is not None and row.outcome == "abandoned"
    assert call.call_sid not in [sid for sid, _ in app.extensions["ivr"].queues.waiting(
        "support")]


def test_a_supervisors_report_waits_out_a_lock_that_webhooks_would_not(stuck, clock):
    app, locked = stuck
    name = unique_name("supervisor")
    app.extensions["ivr_admin"].users.create(name, PASSWORD, "supervisor")
    client = app.test_client()
    assert login(client, name, PASSWORD).status_code == 302
    held, release = threading.Event(), threading.Event()

    def hold_calls_table() -> None:
        with locked("calls"):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_calls_table, daemon=True)
    holder.start()
    assert held.wait(30)
    try:
        pending: dict[str, Any] = {}
        report = threading.Thread(target=lambda: pending.update(r=client.get("/admin/calls/")),
                                  daemon=True)
        report.start()
        report.join(WEBHOOK_TIMEOUT * 4)  # well past what a webhook's statement may take
        assert report.is_alive(), "the report gave up as soon as a webhook would have"
    finally:
        release.set()
        holder.join(30)
    report.join(30)
    assert pending["r"].status_code == 200
