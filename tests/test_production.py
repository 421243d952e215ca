"""`ivr serve --production`: gunicorn from config.toml and env alone. Two servers take turns
on one call's webhooks (nothing a call needs lives in one process), media streams work
through the gthread workers, and SIGTERM leaves no process and no unwritten call log.
SIGHUP is in test_production_sighup.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, text

from ivr_server.config import load_config
from ivr_server.db import make_engine, make_session_factory
from ivr_server.models import Call
from ivr_server.production import ProductionError, default_workers, gunicorn_options
from ivr_server.simulator import DialOutcome, HttpTransport, RecordingsServer, SimulatedCall
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import AlternatingTransport
from speech.model import default_model_path

from . import production_procs
from .conftest import AUTH_TOKEN, PUBLIC_URL, ROOT
from .helpers import call_events
from .production_procs import (
    Server,
    alive,
    config_text,
    descendants,
    free_port,
    ready,
    start_server,
)
from .speech import audio_fixtures
from .test_speech_stream import ACCOUNT_SID, STREAM_FLOW

phone_audio = audio_fixtures.phone_audio
servers = production_procs.servers  # the fixture, used by name
CALLERS, AGENTS, STREAMED = "+15005550810", "+15005550811", "+15005550812"
ORDERS_FLOW = """\
flow: orders
human: "+15005550006"
start: menu
nodes:
  menu:
    type: menu
    prompt: For an order, press 1. For anything else, press 2.
    options:
      - { key: "1", label: order, goto: order_number }
      - { key: "2", label: other, goto: hold }
    retries: 1
    fallback: hold
  order_number:
    type: collect
    prompt: Please key in your four digit order number.
    min_digits: 4
    max_digits: 4
    save_as: order
    retries: 1
    next: hold
    fallback: hold
  hold:
    type: enqueue
    queue: orders
    say: Please hold for the next agent.
    announce: { every: 60, min_change: 60 }
    hold: [{pause: 20}]
    max_wait: 600
    next: thanks
    fallback: sorry
  thanks: { type: say, text: Thanks for your call., next: bye }
  sorry: { type: hangup, say: "Sorry, everyone is busy.", outcome: failed }
  bye: { type: hangup }
"""
DESK_FLOW = """\
flow: desk
start: line
nodes:
  line:
    type: agent_line
    queue: orders
    say: Taking the next caller.
    timeout: 30
    next: done
    fallback: nobody
  done: { type: hangup, say: Call finished. }
  nobody: { type: hangup, say: Nobody is waiting. }
"""


# -- settings, without a server --------------------------------------------------------------


def test_workers_and_threads_come_from_the_environment_over_config_toml():
    env = {"IVR_WORKERS": "3", "IVR_THREADS": "24"}
    options = gunicorn_options(load_config(ROOT / "config.toml", env=env), "0.0.0.0", 8080)
    assert options["workers"] == 3 and options["threads"] == 24
    assert options["worker_class"] == "gthread" and options["bind"] == ["0.0.0.0:8080"]
    auto = gunicorn_options(load_config(ROOT / "config.toml", env={}), "::", 80)
    assert auto["workers"] == default_workers() and auto["bind"] == ["[::]:80"]
    assert default_workers(1) == 3 and default_workers(64) == 8


def test_forwarded_headers_are_believed_only_behind_a_trusted_proxy():
    config = load_config(ROOT / "config.toml", env={"IVR_FORWARDED_ALLOW_IPS": "10.0.0.0/8"})
    assert gunicorn_options(config, "127.0.0.1", 5000)["forwarded_allow_ips"] == ""
    trusted = config.with_section("server", trust_proxy=True)
    assert gunicorn_options(trusted, "127.0.0.1", 5000)["forwarded_allow_ips"] == "10.0.0.0/8"


def test_a_server_with_no_threads_is_refused_with_the_setting_named():
    config = load_config(ROOT / "config.toml", env={"IVR_THREADS": "0"})
    with pytest.raises(ProductionError, match=r"threads \(0\)"):
        gunicorn_options(config, "127.0.0.1", 5000)


def test_a_postgresql_database_without_schema_is_refused_before_gunicorn_starts(
        database_url: str, redis_url: str):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: an SQLite database is migrated at start")
    schema = f"ivr_empty_{uuid.uuid4().hex[:10]}"
    engine = make_engine(database_url)
    try:
        with engine.begin() as db:
            db.execute(text(f"CREATE SCHEMA {schema}"))
        empty = f"{database_url}?options=-csearch_path%3D{schema}"
        # A subprocess: were the check missing, gunicorn must not start inside pytest.
        result = subprocess.run(
            [sys.executable, "-m", "ivr_server", "--config", str(ROOT / "config.toml"), "serve",
             "--production", "--port", str(free_port())],
            env={**os.environ, "DATABASE_URL": empty, "REDIS_URL": redis_url},
            capture_output=True, text=True, timeout=60)
    finally:
        with engine.begin() as db:
            db.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
    assert result.returncode == 1
    assert "the database has no schema yet: run `ivr db upgrade`" in result.stderr


# -- running servers -------------------------------------------------------------------------


def _ordering(transport: Any, **call: Any) -> SimulatedCall:
    """A signed call to the orders flow through `transport` that chose "order" and is asked
    for its number: the same first steps whichever server setup answers."""
    caller = SimulatedCall(transport, AUTH_TOKEN, to=CALLERS, **call)
    caller.dial()
    caller.expect_heard("For an order, press 1.")
    caller.press("1")
    caller.expect_heard("Please key in your four digit order number.")
    return caller


def _sql_calls(database_url: str, call_sid: str) -> int:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as db:
            return db.scalar(select(func.count()).select_from(Call)
                             .where(Call.call_sid == call_sid)) or 0
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_call_whose_webhooks_alternate_between_two_servers_goes_through_the_queue(
        tmp_path: Path, servers: list[Server], redis_url: str, redis_prefix: str,
        database_url: str):
    flows = tmp_path / "flows"  # shared by both servers, as a network folder would be
    flows.mkdir()
    (flows / "orders.yaml").write_text(ORDERS_FLOW)
    (flows / "desk.yaml").write_text(DESK_FLOW)
    config = config_text(flows, {CALLERS: "orders", AGENTS: "desk"},
                          '[queues.agents]\n"orders" = 1\n')
    shared = {"REDIS_URL": redis_url, "IVR_REDIS_PREFIX": redis_prefix,
              "DATABASE_URL": database_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
              "PUBLIC_BASE_URL": PUBLIC_URL}
    servers.append(start_server(tmp_path, "a", config, {**shared, "IVR_WORKERS": "2",
                                                  "IVR_THREADS": "4"}))
    servers.append(start_server(tmp_path, "b", config, {**shared, "IVR_WORKERS": "1",
                                                  "IVR_THREADS": "4"}))
    transport = AlternatingTransport([s.url for s in servers], public_base_url=PUBLIC_URL)
    queues = SimulatedQueues()
    caller = _ordering(transport, from_="+14155550181", queues=queues)
    caller.press("4242")
    caller.expect_heard("Please hold for the next agent.")
    caller.expect_heard("You are number 1 in line.")
    assert caller.waiting_for == "queue"
    caller.wait(90)
    agent = SimulatedCall(transport, AUTH_TOKEN, from_="+14155550199", to=AGENTS,
                          queues=queues)
    agent.dial()
    agent.expect_heard("Taking the next caller.")
    agent.expect_heard("Next caller from 1 4 1 5 5 5 5 0 1 8 1.")
    agent.expect_heard("order: 4 2 4 2.")
    agent.answer_dial(DialOutcome.answered(60))
    agent.expect_heard("Call finished.")
    caller.expect_heard("Thanks for your call.")
    assert caller.ended and caller.status == "completed"
    assert all(status == 200 for _, _, status in caller.requests + agent.requests)

    counts = list(transport.served.values())
    assert sum(counts) == caller.request_count + agent.request_count
    assert min(counts) >= sum(counts) // 2, f"both servers take turns: {transport.served}"
    for server in servers:  # each writes out its call-log backlog on the way out
        assert server.stop() == 0, server.output()

    assert _sql_calls(database_url, caller.call_sid) == 1
    events = call_events(database_url, caller.call_sid)
    steps = ["call_started", "key", "collected", "enqueue", "queue_joined", "queue_answered",
             "queue_result", "queue_left", "hangup", "status"]
    assert [e.kind for e in events if e.kind in steps] == steps, \
        f"each step once, in order: {[(e.kind, e.data) for e in events]}"
    data = {e.kind: e.data for e in events}
    assert data["key"]["digits"] == "1" and data["collected"]["digits"] == "4242"
    assert data["queue_answered"]["agent_call"] == agent.call_sid
    assert data["queue_result"]["result"] == "bridged"


@pytest.mark.slow
def test_production_server_streams_speech_and_stops_cleanly_on_sigterm(
        tmp_path: Path, servers: list[Server], database_url: str, phone_audio):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "streamed.yaml").write_text(STREAM_FLOW)
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as twilio_api:
        # No REDIS_URL: the server's own embedded redis-server. The call log is written
        # only on the way out (the writer's interval is an hour), so SIGTERM must flush it.
        config = config_text(flows, {STREAMED: "streamed"}, (
            f'[speech]\nmodel_path = "{default_model_path()}"\n\n'
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\napi_base_url = "{twilio_api.base_url}"'
            '\n\n[calllog]\nflush_interval = 3600.0\n\n[server]\naccess_log = true\n'))
        server = start_server(tmp_path, "solo", config, {
            "DATABASE_URL": database_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": PUBLIC_URL, "IVR_WORKERS": "1", "IVR_THREADS": "4",
            "IVR_LOG_FORMAT": "json"})
        servers.append(server)
        # Loaded before the worker forked: it is ready on its first probe, and never loads
        # the model while a caller waits (nor would any other worker: all fork from there).
        server.probes += [requests.get(f"{server.url}/readyz", timeout=5).json()
                          for _ in range(6)]
        assert server.probes and all(p["checks"]["speech"] == {
            "ok": True, "detail": "model loaded"} for p in server.probes), server.probes
        processes = descendants(server.process.pid)
        assert any("redis" in name for name in processes.values()), processes

        call = SimulatedCall(HttpTransport(server.url, public_base_url=PUBLIC_URL), AUTH_TOKEN,
                             to=STREAMED, account_sid=ACCOUNT_SID, recordings=twilio_api)
        call.dial()
        assert call.streams, "the prompt opened a media stream to the gthread worker"
        call.say(phone_audio.mulaw_wav("환불"))
        call.expect_heard("Refunds.")
        assert any(m.kind == "redirect" for m in call.transcript), "the stream's answer " \
            "redirected the live call through the REST API"
        call.hangup()

    assert _sql_calls(database_url, call.call_sid) == 0, "still queued in Redis"
    assert server.stop() == 0, server.output()
    left = [f"{pid} {name}" for pid, name in processes.items() if alive(pid)]
    assert not left, f"left running after SIGTERM: {left}"
    assert _sql_calls(database_url, call.call_sid) == 1, server.output()
    events = call_events(database_url, call.call_sid)
    speech = next(e for e in events if e.kind == "speech")
    assert speech.data["path"] == "stream" and speech.data["choice"] == "refund"
    assert any(e.kind == "speech_redirect" for e in events)
    logged = [json.loads(line) for line in server.log.read_text().splitlines()
              if line.startswith("{")]  # vosk's own lines are not Python logging's
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["message"]
               for r in logged), "gunicorn's log goes through the project's JSON logging"
    assert any(r["logger"] == "gunicorn.access" and "POST /voice/incoming" in r["message"]
               for r in logged), "so does its access log, when asked for"


@pytest.mark.slow
def test_plain_gunicorn_on_the_wsgi_module_answers_a_signed_call(
        tmp_path: Path, redis_url: str, redis_prefix: str, database_url: str):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "orders.yaml").write_text(ORDERS_FLOW)
    (tmp_path / "config.toml").write_text(config_text(flows, {CALLERS: "orders"}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env.update({"IVR_CONFIG": str(tmp_path / "config.toml"), "REDIS_URL": redis_url,
                "IVR_REDIS_PREFIX": redis_prefix, "DATABASE_URL": database_url,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": PUBLIC_URL})
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "4", "-w", "1",
             "--no-control-socket", "-b", f"127.0.0.1:{port}", "ivr_server.wsgi:app"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log)
    try:
        ready(server)
        _ordering(HttpTransport(server.url, public_base_url=PUBLIC_URL))
    finally:
        assert server.stop() == 0, server.output()

