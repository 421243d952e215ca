"""Twilio's API answering 429, 500 or nothing at all: texts and callbacks are retried with
backoff (at least as long as Twilio's Retry-After asks), reach Twilio exactly once, and are
kept as failed, in SQL, when the retries run out. Real RQ workers (in this process), real
Redis and SQL, Twilio's contract (Prism) behind tests/fault_proxy.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from callbacks.states import State
from ivr_server import create_app
from ivr_server.callback_reconcile import reconcile
from ivr_server.config import SmsConfig
from ivr_server.db import make_engine, make_session_factory, upgrade
from ivr_server.redis_conn import connect
from ivr_server.simulator import answer_outbound, new_sid
from ivr_server.simulator.calls_api import CallsApi
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport
from ivr_server.sms_jobs import JobContext, deliver, use_context
from ivr_server.sms_outbox import SmsOutbox
from ivr_server.sms_store import SmsStore
from ivr_server.twilio_rest import TwilioRest
from tests.prism import TwilioApiMock

from .callback_rig import ACCOUNT, COMPANY_NUMBER, CallbackRig, MovableClock
from .conftest import AUTH_TOKEN, PUBLIC_URL
from .db_fixtures import fresh_database
from .fault_proxy import CALLS, FaultProxy
from .helpers import call_events, fresh_number

SENDER = "+15005550006"
BACKOFF = SmsConfig(from_number=SENDER, retry_intervals="10,60,300")  # 4 tries in all
CLIENT_TIMEOUT = 1.0  # seconds the worker waits for Twilio; a hang lasts longer
HANG = 2.5


def now() -> dt.datetime:
    """The real time: Twilio's records of what it accepted carry it too."""
    return dt.datetime.now(dt.UTC)


# -- texts ---------------------------------------------------------------------------------


@pytest.fixture
def proxy(twilio_api: TwilioApiMock) -> Iterator[FaultProxy]:
    with FaultProxy(twilio_api.base_url) as running:
        yield running


@pytest.fixture
def store(database_url: str) -> Iterator[SmsStore]:
    engine = make_engine(database_url)
    yield SmsStore(make_session_factory(engine))
    engine.dispose()


@pytest.fixture
def box(redis_url: str, store: SmsStore) -> Iterator[SmsOutbox]:
    jobs = connect(redis_url, decode=False)
    outbox = SmsOutbox(jobs, store, BACKOFF, now, queue_name=f"test-sms-faults-{new_sid('')}")
    yield outbox
    for key in jobs.scan_iter(match=f"rq:*{outbox.queue.name}*".encode(), count=500):
        jobs.delete(key)
    jobs.close()


@pytest.fixture
def worker(box: SmsOutbox, store: SmsStore, proxy: FaultProxy) -> Iterator[Any]:
    """`worker()` runs what is queued, as `ivr worker` does, and returns when the (last)
    retry it scheduled is due (None when none is); that time then comes, and the retries
    are queued, the first due first."""
    use_context(JobContext(store, TwilioRest(ACCOUNT, AUTH_TOKEN, proxy.base_url,
                                             timeout=CLIENT_TIMEOUT), BACKOFF, now,
                           f"{PUBLIC_URL}/sms/status", locks=box.queue.connection,
                           key_prefix=f"{box.queue.name}:"))

    def run() -> float | None:
        SimpleWorker([box.queue], connection=box.queue.connection).work(burst=True)
        registry = ScheduledJobRegistry(queue=box.queue)
        due = registry.get_job_ids()  # the first due first
        if not due:
            return None
        when = registry.get_scheduled_time(due[-1]).timestamp()
        for job_id in due:
            job = Job.fetch(job_id, connection=box.queue.connection)
            registry.remove(job)
            box.queue.enqueue_job(job)
        return when

    yield run
    use_context(None)


def about(wait: float, seconds: float) -> bool:
    """RQ schedules to the whole second; the worker takes a moment to schedule."""
    return seconds - 1 <= wait < seconds + 30


def backoff(worker: Any, proxy: FaultProxy) -> list[float]:
    """Run the job to its end; each retry's wait, counted from the answer that failed."""
    waits = []
    while (when := worker()) is not None:
        waits.append(when - proxy.creates()[-1].at)
    return waits


def test_a_text_twilio_answers_429_waits_as_long_as_retry_after_asks_and_is_sent_once(
        box, store, proxy, worker):
    to = fresh_number()
    message = box.send(kind="wait_estimate", to=to, body="You're number 3 in line.")
    proxy.fail_next(2, 429, retry_after=120)

    waits = backoff(worker, proxy)

    assert len(waits) == 2 and all(about(w, 120) for w in waits), waits  # not 10 and 60
    assert [s.what for s in proxy.creates()] == ["429", "429", "passed"]
    [sent] = proxy.messages()
    assert (sent.one("To"), sent.one("Body")) == (to, "You're number 3 in line.")
    row = store.message(message)
    assert row.status == "sent" and row.message_sid == sent.sid


def test_a_text_met_by_twilio_500s_is_retried_with_growing_waits_and_sent_once(
        box, store, proxy, worker):
    message = box.send(kind="survey_question", to=fresh_number(), body="How did we do?")
    proxy.fail_next(2, 500)

    waits = backoff(worker, proxy)

    assert about(waits[0], 10) and about(waits[1], 60), waits  # retry_intervals 10,60,...
    assert len(proxy.messages()) == 1
    assert store.message(message).status == "sent"


def test_a_text_whose_answer_timed_out_after_twilio_took_it_is_not_sent_again(
        box, store, proxy, worker):
    message = box.send(kind="wait_estimate", to=fresh_number(), body="About 5 minutes.")
    proxy.hang_next(1, HANG, reached=True)

    assert worker() is not None  # no answer: a retry is scheduled
    unsure = store.message(message)
    assert unsure.status == "sending" and "could not be reached" in unsure.error
    assert worker() is None  # the retry asks Twilio first, and finds it

    [sent] = proxy.messages()
    assert len(proxy.creates()) == 1  # never posted again
    row = store.message(message)
    assert row.status == "sent" and row.message_sid == sent.sid


def test_two_identical_texts_whose_answers_were_lost_each_keep_their_own_message(
        box, store, proxy, worker):
    to, body = fresh_number(), "You're number 2 in line."
    first = box.send(kind="wait_estimate", to=to, body=body, call_sid=new_sid("CA"))
    second = box.send(kind="wait_estimate", to=to, body=body, call_sid=new_sid("CA"))
    proxy.hang_next(2, HANG, reached=True)

    assert worker() is not None  # Twilio took both; neither answer came back
    assert [store.message(m).status for m in (first, second)] == ["sending", "sending"]
    assert worker() is None  # each retry asks Twilio first, and finds a message

    took_first, took_second = proxy.messages()  # what the phone got, in order
    assert len(proxy.creates()) == 2  # neither posted again
    rows = [store.message(m) for m in (first, second)]
    assert [(r.status, r.message_sid) for r in rows] == [("sent", took_first.sid),
                                                          ("sent", took_second.sid)]


def test_a_lost_text_is_sent_again_though_an_identical_one_to_the_number_just_went(
        box, store, proxy, worker):
    to, body = fresh_number(), "How did we do? Reply 1 to 5."
    earlier = box.send(kind="survey_question", to=to, body=body, call_sid=new_sid("CA"))
    assert worker() is None
    later = box.send(kind="survey_question", to=to, body=body, call_sid=new_sid("CA"))
    proxy.hang_next(1, HANG, reached=False)

    backoff(worker, proxy)  # the retry finds only the earlier text's message: not its own

    sent_earlier, sent_later = proxy.messages()
    assert [s.what for s in proxy.creates()] == ["passed", "hang (dropped)", "passed"]
    assert store.message(earlier).message_sid == sent_earlier.sid
    assert (store.message(later).status, store.message(later).message_sid) == (
        "sent", sent_later.sid)


def test_a_lost_text_never_takes_the_message_of_an_identical_one_whose_answer_is_on_its_way(
        box, store, proxy, worker):
    to, body = fresh_number(), "You're number 3 in line."
    lost = box.send(kind="wait_estimate", to=to, body=body, call_sid=new_sid("CA"))
    proxy.hang_next(1, HANG, reached=False)
    assert worker() is not None  # it never reached Twilio, but the worker cannot know that
    twin = box.send(kind="wait_estimate", to=to, body=body, call_sid=new_sid("CA"))
    proxy.slow_next(1, 0.5)
    proxy.hanging.clear()
    other_worker = threading.Thread(target=deliver, args=(twin,))
    other_worker.start()
    assert proxy.hanging.wait(5)  # Twilio has the twin; its answer is on the way

    backoff(worker, proxy)  # the lost text's retry asks Twilio, which lists the twin's message
    other_worker.join()

    assert [s.what for s in proxy.creates()] == ["hang (dropped)", "slow answer", "passed"]
    twins_message, resent = proxy.messages()  # the phone gets two texts, as it should
    assert store.message(twin).message_sid == twins_message.sid
    assert (store.message(lost).status, store.message(lost).message_sid) == ("sent", resent.sid)


def test_a_text_whose_request_never_reached_twilio_is_sent_by_the_retry(
        box, store, proxy, worker):
    message = box.send(kind="wait_estimate", to=fresh_number(), body="About 7 minutes.")
    proxy.hang_next(1, HANG, reached=False)

    backoff(worker, proxy)

    assert [s.what for s in proxy.creates()] == ["hang (dropped)", "passed"]
    [sent] = proxy.messages()
    assert store.message(message).message_sid == sent.sid


def test_a_text_twilio_keeps_refusing_is_kept_as_failed_when_the_retries_run_out(
        box, store, proxy, worker):
    message = box.send(kind="wait_estimate", to=fresh_number(), body="Soon.")
    proxy.fail_next(4, 503)

    waits = backoff(worker, proxy)

    assert len(waits) == 3 and len(proxy.creates()) == 4
    assert proxy.messages() == []
    row = store.message(message)
    assert row.status == "failed"
    assert "gave up after 4 tries" in row.error and "503" in row.error
    assert FailedJobRegistry(queue=box.queue).count == 1


# -- callbacks -----------------------------------------------------------------------------


@pytest.fixture
def callbacks(tmp_path, config, twilio_api: TwilioApiMock) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    """A callback rig on the real time, whose Twilio goes through the fault proxy to the
    journal of calls Twilio accepted (CallsApi), then Prism."""
    stack = contextlib.ExitStack()
    # A database of its own: the reconciler looks after every request it holds.
    database = stack.enter_context(fresh_database(tmp_path))
    upgrade(database)
    calls = CallsApi(twilio_api.base_url).start()
    stack.callback(calls.close)
    proxy = stack.enter_context(FaultProxy(calls.base_url))
    clock = MovableClock(now().replace(microsecond=0))
    cfg = (config.with_section("twilio", account_sid=ACCOUNT, api_base_url=proxy.base_url)
           .with_section("database", url=database)
           .with_section("callbacks", from_number=COMPANY_NUMBER, callee_hours="00:00-24:00",
                         dial_grace=2))
    app = create_app(cfg, clock=clock)
    twilio_api.clear()
    services = app.extensions["ivr"]
    services.callbacks.rest = TwilioRest(ACCOUNT, AUTH_TOKEN, proxy.base_url,
                                         timeout=CLIENT_TIMEOUT)
    rig = CallbackRig(app, clock, twilio_api)
    booking = rig.ctx.callbacks.book(number=rig.number, queue=f"q-{new_sid('')[:8]}",
                                     reason="offer", call_sid=new_sid("CA"),
                                     caller_id=COMPANY_NUMBER)
    assert booking.ok, booking.error
    yield {"rig": rig, "proxy": proxy, "calls": calls, "id": booking.callback_id}
    services.redis.close()
    services.session_factory.kw["bind"].dispose()
    stack.close()


def _answered_once(setup: dict[str, Any]) -> None:
    """The callee's phone rings once; they answer, talk and hang up: the request completes."""
    rig, calls = setup["rig"], setup["calls"]
    [placed] = calls.placed()
    assert len(rig.placed_calls()) == 1  # what reached Twilio's contract
    callee = answer_outbound(InProcessTransport(rig.app, PUBLIC_URL), AUTH_TOKEN, placed.form,
                             call_sid=placed.sid, queues=SimulatedQueues())
    assert any("returning your call" in h for h in callee.heard)
    callee.hangup()
    assert rig.ctx.store.get(setup["id"]).state == State.COMPLETED


def test_a_callback_twilio_answers_429_then_500_is_placed_once_after_backing_off(callbacks):
    rig, proxy = callbacks["rig"], callbacks["proxy"]
    proxy.fail_next(1, 429, retry_after=100, on=CALLS)
    proxy.fail_next(1, 500, on=CALLS)
    start = rig.clock.now

    assert rig.work() == ["retry"]
    row = rig.ctx.store.get(callbacks["id"])
    assert row.state == State.SCHEDULED and row.attempts == 0  # no call was made
    assert row.due_at == start + dt.timedelta(seconds=100)  # Retry-After beats the 30 s
    rig.clock.advance(100)
    assert rig.work() == ["retry"]
    assert rig.ctx.store.get(callbacks["id"]).due_at == rig.clock.now + dt.timedelta(seconds=60)
    rig.clock.advance(60)
    assert rig.work() == ["placed"]

    row = rig.ctx.store.get(callbacks["id"])
    assert row.state == State.DIALING and row.attempts == 1
    retries = [e.data for e in call_events(rig.app, row.call_sid) if e.kind == "callback_retry"]
    assert [r["why"] for r in retries] == ["Twilio answered 429", "Twilio answered 500"]
    _answered_once(callbacks)


def test_a_callback_twilio_keeps_refusing_is_kept_as_failed_without_a_call(callbacks):
    rig, proxy = callbacks["rig"], callbacks["proxy"]
    proxy.fail_next(20, 503, on=CALLS)

    results = []
    for _ in range(12):
        results += rig.work()
        rig.clock.advance(3600)

    assert results == ["retry"] * 8 + ["failed"]
    row = rig.ctx.store.get(callbacks["id"])
    assert row.state == State.FAILED and row.last_outcome == "twilio-busy"
    assert row.attempts == 0 and callbacks["calls"].placed() == []
    [failed] = [e for e in call_events(rig.app, row.call_sid) if e.kind == "callback_failed"]
    assert "Twilio answered 503 9 times" in failed.data["why"]


@pytest.mark.parametrize("reached", [True, False], ids=["twilio-took-it", "never-arrived"])
def test_a_callback_whose_dial_request_timed_out_rings_the_callee_exactly_once(
        callbacks, reached):
    rig, proxy, calls = callbacks["rig"], callbacks["proxy"], callbacks["calls"]
    proxy.hang_next(1, HANG, reached=reached, on=CALLS)

    assert rig.work() == ["unknown"]  # no answer: the attempt is left for the reconciler
    assert rig.ctx.store.get(callbacks["id"]).state == State.DIALING
    rig.clock.advance(5)  # past dial_grace
    done = reconcile(rig.ctx)
    assert done == ({"still-ringing": 1} if reached else {"lost": 1})
    rig.work()  # a lost attempt is dialled again; a found one is not

    [placed] = calls.placed()
    row = rig.ctx.store.get(callbacks["id"])
    assert row.state == State.DIALING and row.attempts == 1 and row.dial_sid == placed.sid
    _answered_once(callbacks)
