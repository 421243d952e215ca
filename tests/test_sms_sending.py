"""Texts are queued by the web side and sent by an RQ worker through Twilio's REST API,
checked against Twilio's own contract (Prism): what Twilio accepts is sent, what it
refuses fails visibly, busy answers are retried, opt-outs are honoured before every send."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import phonenumbers
import pytest
from rq import SimpleWorker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from ivr_server.config import SmsConfig
from ivr_server.db import make_engine, make_session_factory
from ivr_server.redis_conn import connect
from ivr_server.simulator import new_sid
from ivr_server.sms_jobs import JobContext, use_context
from ivr_server.sms_outbox import SmsOutbox
from ivr_server.sms_store import SmsStore
from ivr_server.twilio_rest import TwilioRest
from tests.helpers import fresh_number
from tests.prism import TwilioApiMock

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "test-auth-token-0123456789abcdef"
NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
MOBILE = phonenumbers.format_number(phonenumbers.example_number_for_type(
    "US", phonenumbers.PhoneNumberType.MOBILE), phonenumbers.PhoneNumberFormat.E164)
SENDER = SmsConfig(from_number="+15005550006", retry_intervals="0,0")


@pytest.fixture
def store(database_url: str) -> SmsStore:
    return SmsStore(make_session_factory(make_engine(database_url)))


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator:  # noqa: ANN001
    client = connect(redis_url, decode=False)  # RQ's jobs are binary
    yield client
    for key in client.scan_iter(match=b"rq:*test-sms-*", count=500):  # this test's queues
        client.delete(key)
    client.close()


def outbox(redis_client, store: SmsStore, config: SmsConfig = SENDER) -> SmsOutbox:  # noqa: ANN001
    # A queue of its own per test: the Redis server is shared.
    return SmsOutbox(redis_client, store, config, lambda: NOW, queue_name=f"test-sms-{new_sid('')}")


def work(box: SmsOutbox, store: SmsStore, api_url: str, config: SmsConfig = SENDER,
         still_queued=None) -> None:  # noqa: ANN001
    """What `ivr worker` does, in this process, until the queue is empty."""
    use_context(JobContext(store, TwilioRest(ACCOUNT, TOKEN, api_base_url=api_url), config,
                           lambda: NOW, "https://ivr.example.test/sms/status", still_queued))
    try:
        SimpleWorker([box.queue], connection=box.queue.connection).work(burst=True)
    finally:
        use_context(None)


@pytest.fixture
def api(twilio_api: TwilioApiMock) -> TwilioApiMock:
    assert urlsplit(twilio_api.base_url).hostname == "127.0.0.1"
    twilio_api.clear()
    return twilio_api


def test_a_queued_text_is_sent_by_the_worker_as_twilio_accepts_it(redis_client, store, api):
    box = outbox(redis_client, store)
    call = new_sid("CA")
    message = box.send(kind="wait_estimate", to=MOBILE, body="You're number 2 in line.",
                       call_sid=call)
    assert message is not None and store.message(message).status == "queued"
    work(box, store, api.base_url)
    sent = api.last()
    assert sent.status == 201, api.log_tail()
    assert sent.fields["To"] == MOBILE and sent.fields["From"] == "+15005550006"
    assert sent.fields["Body"] == "You're number 2 in line."
    assert sent.fields["StatusCallback"] == "https://ivr.example.test/sms/status"
    row = store.message(message)
    assert row.status == "sent" and row.message_sid and row.call_sid == call


def test_a_message_twilio_would_refuse_fails_visibly(redis_client, store, api):
    nobody = SmsConfig(from_number="", messaging_service_sid="MG" + "0" * 32,
                       retry_intervals="0")
    box = outbox(redis_client, store, nobody)
    message = box.send(kind="survey_question", to=MOBILE, body="How did we do?")
    # The worker sends with a malformed Messaging Service: Twilio's contract refuses it.
    work(box, store, api.base_url, SmsConfig(messaging_service_sid="not-a-service"))
    row = store.message(message)
    assert row.status == "failed" and row.error and "HTTP 4" in row.error


def test_numbers_that_cannot_take_a_text_are_never_queued(redis_client, store):
    box = outbox(redis_client, store)
    for withheld in ("anonymous", "+266696687", "", "911"):
        assert box.send(kind="wait_estimate", to=withheld, body="x") is None
    assert box.queue.count == 0


def test_an_opted_out_number_is_not_sent_to(redis_client, store, api):
    box = outbox(redis_client, store)
    other = fresh_number()
    store.set_opt_out(other, False, "START", NOW)
    message = box.send(kind="wait_estimate", to=other, body="Your wait is short.")
    store.set_opt_out(other, True, "STOP", NOW)  # STOP arrives before the worker runs
    work(box, store, api.base_url)
    assert store.message(message).status == "refused"
    assert api.requests == []
    assert box.send(kind="wait_estimate", to=other, body="Again?") is None


class _Busy(BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        type(self).hits += 1
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"code": 20503, "message": "Service unavailable", "status": 503}')

    def log_message(self, *args: object) -> None:
        pass


def test_a_busy_twilio_is_retried_then_the_job_is_kept_as_failed(redis_client, store):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        box = outbox(redis_client, store)
        message = box.send(kind="wait_estimate", to=MOBILE, body="Soon.")
        work(box, store, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert _Busy.hits == 3, "the first try and two retries"
    row = store.message(message)
    assert row.status == "failed" and "503" in row.error and "gave up after 3 tries" in row.error
    assert FailedJobRegistry(queue=box.queue).count == 1


def _burst_worker(redis_client, api, redis_url, redis_prefix, tmp_path,  # noqa: ANN001
                  queue_texts, queued_at: dt.datetime = NOW) -> list[str]:  # noqa: ANN001
    """`queue_texts(outbox)` on a database of its own, then `ivr worker --burst`; returns the
    status of each message queue_texts returned."""
    from click.testing import CliRunner

    from ivr_server.cli import main
    from ivr_server.db import upgrade

    from .conftest import ROOT
    from .db_fixtures import fresh_database

    # A database of its own: the worker also looks after every callback request it holds.
    with fresh_database(tmp_path) as database_url:
        upgrade(database_url)
        engine = make_engine(database_url)
        store = SmsStore(make_session_factory(engine))
        # The queue the server uses: "sms" after the deployment's key prefix.
        box = SmsOutbox(redis_client, store, SENDER, lambda: queued_at,
                        queue_name=f"{redis_prefix}sms")
        queued = queue_texts(box)
        env = {"REDIS_URL": redis_url, "DATABASE_URL": database_url,
               "IVR_REDIS_PREFIX": redis_prefix,
               "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
               "TWILIO_API_BASE_URL": api.base_url, "TWILIO_SMS_FROM": "+15005550006"}
        result = CliRunner().invoke(main, ["--config", str(ROOT / "config.toml"), "worker",
                                           "--burst"], env=env)
        assert result.exit_code == 0, result.output
        statuses = [store.message(m).status for m in queued]
        engine.dispose()
    return statuses


def test_ivr_worker_sends_what_the_web_side_queued(redis_client, api, redis_url,
                                                   redis_prefix, tmp_path):
    statuses = _burst_worker(
        redis_client, api, redis_url, redis_prefix, tmp_path,
        lambda box: [box.send(kind="wait_estimate", to=MOBILE, body="Worker test.")])
    assert statuses == ["sent"]
    assert api.last().fields["Body"] == "Worker test."


def test_a_burst_worker_sends_a_retry_that_is_due_and_leaves_one_that_is_not(
        redis_client, api, redis_url, redis_prefix, tmp_path):
    """Retries wait in RQ's ScheduledJobRegistry; with no RQ scheduler process, the worker
    itself puts the due ones in line (in --burst mode, once, before it works)."""
    def retries_waiting(box: SmsOutbox) -> list[int]:
        due = box.send(kind="wait_estimate", to=MOBILE, body="Due retry.")
        later = box.send(kind="wait_update", to=MOBILE, body="Later retry.")
        scheduled = ScheduledJobRegistry(queue=box.queue)
        now = dt.datetime.now(dt.UTC)
        for job, when in zip(box.queue.get_jobs(), (now - dt.timedelta(seconds=5),
                                                     now + dt.timedelta(hours=1)), strict=True):
            box.queue.remove(job)
            scheduled.schedule(job, when)
        return [due, later]

    statuses = _burst_worker(redis_client, api, redis_url, redis_prefix, tmp_path,
                                retries_waiting)
    assert statuses == ["sent", "queued"]
    assert api.last().fields["Body"] == "Due retry."


def _lost_by_redis(body: str):  # noqa: ANN202
    def queue_texts(box: SmsOutbox) -> list[int]:
        message = box.send(kind="callback_confirmed", to=MOBILE, body=body)
        box.queue.empty()  # Redis restarted without its data: the job is gone, the row stays
        return [message]
    return queue_texts


@pytest.mark.parametrize(("queued_ago", "status", "sends"), [
    (dt.timedelta(minutes=5), "sent", 1),  # sent once, late but still useful
    (dt.timedelta(hours=2), "failed", 0),  # too late to make sense: failed, not sent
], ids=["minutes-ago", "hours-ago"])
def test_a_text_whose_job_redis_lost_is_sent_once_or_if_too_late_marked_failed(
        redis_client, api, redis_url, redis_prefix, tmp_path, queued_ago, status, sends):
    before = len(api.requests)
    statuses = _burst_worker(redis_client, api, redis_url, redis_prefix, tmp_path,
                             _lost_by_redis("We'll call you back at 3pm."),
                             queued_at=dt.datetime.now(dt.UTC) - queued_ago)
    assert statuses == [status]
    assert [r.fields["Body"] for r in api.requests[before:]] == \
        ["We'll call you back at 3pm."] * sends


def test_a_wait_text_is_dropped_if_the_caller_left_the_queue_before_it_went(
        redis_client, store, api):
    box = outbox(redis_client, store)
    left, waiting = new_sid("CA"), new_sid("CA")
    gone = box.send(kind="wait_estimate", to=MOBILE, body="Gone.", call_sid=left)
    kept = box.send(kind="wait_update", to=MOBILE, body="Still here.", call_sid=waiting)
    work(box, store, api.base_url, still_queued=lambda sid: sid == waiting)
    assert store.message(gone).status == "refused"
    assert store.message(kept).status == "sent"
    assert [r.fields["Body"] for r in api.requests] == ["Still here."]


def test_voip_numbers_are_texted_only_when_allowed(redis_client, store):
    voip = phonenumbers.format_number(phonenumbers.example_number_for_type(
        "GB", phonenumbers.PhoneNumberType.VOIP), phonenumbers.PhoneNumberFormat.E164)
    assert outbox(redis_client, store).send(kind="wait_estimate", to=voip, body="x") is None
    allowed = SmsConfig(from_number="+15005550006", allow_voip=True)
    assert outbox(redis_client, store, allowed).send(kind="wait_estimate", to=voip,
                                                     body="x") is not None
