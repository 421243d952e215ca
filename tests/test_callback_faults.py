"""Callbacks survive faults: a worker SIGKILLed while placing the call, Redis losing the
jobs. Real `ivr worker` processes, real Redis and RQ, Twilio's contract (Prism) behind a
journal of the calls Twilio accepted; never two calls, never a lost request."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callbacks.states import State
from ivr_server import create_app
from ivr_server.callback_reconcile import reconcile
from ivr_server.db import upgrade
from ivr_server.simulator import answer_outbound, new_sid
from ivr_server.simulator.calls_api import CallsApi, PlacedCall
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport, twilio_signature
from tests.prism import TwilioApiMock

from .callback_rig import ACCOUNT, COMPANY_NUMBER, new_york_number
from .conftest import AUTH_TOKEN, PUBLIC_URL
from .db_fixtures import fresh_database
from .worker_procs import kill_worker

pytestmark = pytest.mark.slow
IVR = Path(sys.executable).with_name("ivr")


def _toml(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else \
        str(value) if isinstance(value, int) else f'"{value}"'


@pytest.fixture
def setup(tmp_path, config, twilio_api: TwilioApiMock) -> Iterator[dict]:  # noqa: ANN001
    # A database of its own: a worker's reconciler looks after every request it holds.
    stack = contextlib.ExitStack()
    database = stack.enter_context(fresh_database(tmp_path))
    upgrade(database)
    calls = CallsApi(twilio_api.base_url).start()
    cfg = (config.with_section("twilio", account_sid=ACCOUNT, api_base_url=calls.base_url)
           .with_section("database", url=database)
           .with_section("callbacks", from_number=COMPANY_NUMBER, callee_hours="00:00-24:00",
                         dial_grace=2, reconcile_interval=1))
    app = create_app(cfg)  # the real clock: the worker processes use it too
    transport = InProcessTransport(app, PUBLIC_URL)

    def initiated(call: PlacedCall, status: str) -> None:  # Twilio's first status callback
        url = call.one("StatusCallback")
        params = {"CallSid": call.sid, "AccountSid": ACCOUNT, "CallStatus": status,
                  "From": call.one("From"), "To": call.one("To"), "Direction": "outbound-api"}
        transport.send("POST", url, params,
                       {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, params)})

    calls.status_poster = initiated
    sections = {
        "server": {"public_base_url": PUBLIC_URL, "instance_path": str(tmp_path / "w")},
        "twilio": {"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN,
                   "api_base_url": calls.base_url},
        "redis": {"url": cfg.redis.url, "key_prefix": cfg.redis.key_prefix},
        "database": {"url": cfg.database_url},
        "flows": {"directory": str(cfg.flows_dir)},
        "callbacks": {"from_number": COMPANY_NUMBER, "callee_hours": "00:00-24:00",
                      "dial_grace": 2, "reconcile_interval": 1},
    }
    path = tmp_path / "worker.toml"
    path.write_text("\n".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n"
                                                       for k, v in values.items())
                              for name, values in sections.items()))
    workers: list[subprocess.Popen] = []

    def start_worker() -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        log = (tmp_path / f"worker-{len(workers)}.log").open("wb")
        worker = subprocess.Popen([str(IVR), "worker"], env={**env, "IVR_CONFIG": str(path)},
                                  stdout=log, stderr=subprocess.STDOUT)
        workers.append(worker)
        return worker

    yield {"app": app, "calls": calls, "ctx": app.extensions["ivr"].callbacks,
           "start_worker": start_worker, "transport": transport}
    for worker in workers:
        kill_worker(worker)
    calls.close()
    app.extensions["ivr"].redis.close()
    app.extensions["ivr"].session_factory.kw["bind"].dispose()
    stack.close()


def _book(ctx, queue: str) -> int:  # noqa: ANN001
    booking = ctx.callbacks.book(number=new_york_number(), queue=queue, reason="offer",
                                 call_sid=new_sid("CA"), caller_id=COMPANY_NUMBER)
    assert booking.ok, booking.error
    return booking.callback_id


def _killed_while_dialling(setup: dict) -> int:
    """Book a callback and SIGKILL the worker once its dial request reaches "Twilio"."""
    callback_id = _book(setup["ctx"], f"q-{new_sid('')[:8]}")
    worker = setup["start_worker"]()
    assert setup["calls"].arrived.wait(30), "the worker never asked Twilio to place the call"
    kill_worker(worker)
    return callback_id


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _finish(setup: dict, callback_id: int) -> None:
    """The callee answers the one call placed, talks, and hangs up."""
    ctx, calls = setup["ctx"], setup["calls"]
    placed = calls.placed()[0]
    callee = answer_outbound(setup["transport"], AUTH_TOKEN, placed.form, call_sid=placed.sid,
                             queues=SimulatedQueues())
    assert ctx.store.get(callback_id).state == State.CONNECTED
    assert any("returning your call" in h for h in callee.heard)  # the demo's callback branch
    callee.hangup()
    assert ctx.store.get(callback_id).state == State.COMPLETED


def test_a_worker_killed_while_twilio_takes_the_call_never_causes_a_second_call(setup):
    calls, ctx = setup["calls"], setup["ctx"]
    calls.hold = 3.0  # Twilio is slow to answer: the worker dies waiting
    callback_id = _killed_while_dialling(setup)
    _until(lambda: len(calls.placed()) == 1, 10, "Twilio to accept the call")
    calls.hold = 0.0

    setup["start_worker"]()  # its reconciler runs at once and every second
    _until(lambda: ctx.store.get(callback_id).dial_sid == calls.placed()[0].sid, 10,
           "the call's first status callback to name it")
    time.sleep(4)  # well past dial_grace and several reconciler passes
    assert len(calls.placed()) == 1
    row = ctx.store.get(callback_id)
    assert row.state == State.DIALING and row.attempts == 1
    _finish(setup, callback_id)


def test_a_call_placed_by_a_killed_worker_is_found_at_twilio_even_without_news(setup):
    calls, ctx = setup["calls"], setup["ctx"]
    calls.hold, calls.status_poster = 2.0, None  # Twilio takes it; its callbacks are lost
    callback_id = _killed_while_dialling(setup)
    _until(lambda: len(calls.placed()) == 1, 10, "Twilio to accept the call")
    calls.hold = 0.0

    setup["start_worker"]()  # after dial_grace it asks Twilio's Calls list: the call is there
    _until(lambda: ctx.store.get(callback_id).dial_sid == calls.placed()[0].sid, 15,
           "the reconciler to find the call at Twilio")
    time.sleep(3)
    assert len(calls.placed()) == 1
    assert ctx.store.get(callback_id).state == State.DIALING  # still ringing, not redialled
    _finish(setup, callback_id)


def test_a_worker_killed_before_twilio_had_the_call_is_dialled_again_exactly_once(setup):
    calls, ctx = setup["calls"], setup["ctx"]
    calls.hold, calls.drop = 2.0, True  # the request dies with the worker
    callback_id = _killed_while_dialling(setup)
    assert ctx.store.get(callback_id).state == State.DIALING
    calls.hold, calls.drop = 0.0, False

    setup["start_worker"]()  # after dial_grace, Twilio has no such call: dial again
    _until(lambda: len(calls.placed()) == 1, 20, "the attempt to be placed again")
    time.sleep(4)
    assert len(calls.placed()) == 1
    row = ctx.store.get(callback_id)
    assert row.attempts == 1  # the attempt that never reached Twilio does not count
    events = _kinds(setup["app"], row.call_sid)
    assert "callback_attempt_lost" in events
    _finish(setup, callback_id)


def test_callbacks_scheduled_for_later_survive_redis_losing_every_job(setup):
    ctx = setup["ctx"]
    queue = ctx.callbacks.jobs.queue
    later = ctx.callbacks.book(number=new_york_number(), queue=f"q-{new_sid('')[:8]}",
                               reason="abandoned", call_sid=new_sid("CA"),
                               caller_id=COMPANY_NUMBER, wait_seconds=3600)
    assert later.ok
    jobs = ctx.callbacks.jobs.redis
    for key in jobs.scan_iter(match=f"rq:*{queue.name}*".encode()):  # as if Redis restarted
        jobs.delete(key)
    for key in jobs.scan_iter(match=f"rq:job:{ctx.callbacks.jobs.job_prefix}-*".encode()):
        jobs.delete(key)
    row = ctx.store.get(later.callback_id)
    assert not ctx.callbacks.jobs.pending(row.id, row.seq)

    done = reconcile(ctx)

    assert done["rescheduled"] >= 1
    assert ctx.callbacks.jobs.pending(row.id, row.seq)
    due = ctx.store.get(later.callback_id).due_at
    assert due > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)  # still at its time


def _kinds(app, call_sid: str) -> list[str]:  # noqa: ANN001
    from .helpers import call_events

    return [e.kind for e in call_events(app, call_sid)]
