"""`ivr worker`'s log as an operator's log shipper gets it: JSON lines, each line written
while a job about a call runs (RQ's own lines included) carrying that call's CallSid, and
never the caller's full number, even when Twilio's answer quotes it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ivr_server import create_app
from ivr_server.config import SmsConfig
from ivr_server.db import make_engine, make_session_factory, upgrade
from ivr_server.redis_conn import connect
from ivr_server.simulator import new_sid
from ivr_server.sms_outbox import SmsOutbox
from ivr_server.sms_store import SmsStore

from .callback_rig import ACCOUNT, COMPANY_NUMBER, new_york_number
from .conftest import AUTH_TOKEN, PUBLIC_URL
from .db_fixtures import fresh_database
from .helpers import fresh_number

IVR = Path(sys.executable).with_name("ivr")


class RefusingTwilio:
    """Twilio refusing every text and call with an error that quotes the number, as its
    21211 does, and failing to list calls (HTTP 503)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                to = form.get("To", [""])[0]
                self._answer(400, 21211, f"The 'To' number {to} is not a valid phone number.")

            def do_GET(self) -> None:  # noqa: N802
                to = parse_qs(urlsplit(self.path).query).get("To", [""])[0]
                self._answer(503, 20503, f"Service unavailable listing calls to {to}")

            def _answer(self, status: int, code: int, message: str) -> None:
                body = json.dumps({"code": code, "message": message, "status": status,
                                   "more_info": f"https://www.twilio.com/docs/errors/{code}"})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def twilio() -> Iterator[RefusingTwilio]:
    api = RefusingTwilio()
    yield api
    api.close()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A database of its own: the worker's reconciler looks after every callback it holds."""
    with fresh_database(tmp_path) as url:
        upgrade(url)
        yield url


def run_burst_worker(tmp_path: Path, sections: dict[str, dict[str, object]]) -> list[dict]:
    """`ivr worker --burst` with JSON logs; every line it wrote to stderr, parsed (a line
    that is not JSON fails the test)."""
    path = tmp_path / "worker.toml"
    path.write_text("".join(
        f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in items.items())
        for name, items in {**sections, "logging": {"format": "json", "level": "INFO"}}.items()))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IVR_", "TWILIO_", "REDIS_", "DATABASE_"))}
    done = subprocess.run([str(IVR), "--config", str(path), "worker", "--burst"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not done.stdout.strip(), f"nothing on stdout, got: {done.stdout}"
    lines = done.stderr.splitlines()
    return [json.loads(line) for line in lines]


def twilio_section(twilio: RefusingTwilio) -> dict[str, object]:
    return {"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN, "api_base_url": twilio.base_url}


def running(lines: list[dict], description: str) -> tuple[list[dict], list[dict]]:
    """(the lines written while the job ran, every other line). The job runs from RQ's
    taking it ("...: <description> (<job id>)", a line RQ writes before the job counts as
    started, so about no call yet) to RQ's keeping its result, inclusive."""
    taken = next(i for i, line in enumerate(lines)
                 if line["logger"] == "rq.worker" and description in line["message"])
    job_id = lines[taken]["message"].rsplit("(", 1)[1].rstrip(")")
    end = next(i for i, line in enumerate(lines) if i > taken and line["logger"] == "rq.worker"
               and f"job {job_id} result" in line["message"])
    return lines[taken + 1:end + 1], lines[:taken] + lines[end + 1:]


def test_every_line_of_a_text_job_names_its_call_and_masks_the_callers_number(
        tmp_path, database, twilio, redis_url, redis_prefix):
    number, sid = fresh_number(), new_sid("CA")
    engine = make_engine(database)
    store = SmsStore(make_session_factory(engine))
    jobs = connect(redis_url, decode=False)
    box = SmsOutbox(jobs, store, SmsConfig(from_number=COMPANY_NUMBER, retry_intervals=""),
                    lambda: dt.datetime.now(dt.UTC), queue_name=f"{redis_prefix}sms")
    message = box.send(kind="callback_confirmed", to=number, body="We'll call you back.",
                       call_sid=sid)
    assert message is not None

    lines = run_burst_worker(tmp_path, {
        "redis": {"url": redis_url, "key_prefix": redis_prefix},
        "database": {"url": database}, "twilio": twilio_section(twilio),
        "sms": {"from_number": COMPANY_NUMBER}})
    assert store.message(message).status == "failed"
    engine.dispose()
    jobs.close()

    job, others = running(lines, "sms callback_confirmed to")
    refused = [line for line in job if "failed for good" in line["message"]]
    assert refused and refused[0]["logger"] == "ivr_server.sms_jobs", job
    assert f"to +1******{number[-4:]} failed for good" in refused[0]["message"]
    assert any("Successfully completed" in line["message"] for line in job)  # RQ's own
    assert [line["call_sid"] for line in job] == [sid] * len(job), job
    # Before and after the job, the worker's lines are about no call.
    assert {line["call_sid"] for line in others} == {None}, others
    assert number[2:] not in json.dumps(lines)


def test_callback_jobs_and_the_reconciler_name_the_call_each_line_is_about(
        tmp_path, config, database, twilio, redis_url, redis_prefix):
    calling = {"from_number": COMPANY_NUMBER, "callee_hours": "00:00-24:00", "dial_grace": 2}
    cfg = (config.with_section("database", url=database)
           .with_section("twilio", account_sid=ACCOUNT, api_base_url=twilio.base_url)
           .with_section("callbacks", **calling))
    app = create_app(cfg)
    ctx = app.extensions["ivr"].callbacks
    due, due_sid = new_york_number(), new_sid("CA")
    booking = ctx.callbacks.book(number=due, queue=f"q-{new_sid('')[:8]}", reason="offer",
                                 call_sid=due_sid, caller_id=COMPANY_NUMBER)
    assert booking.ok, booking.error
    # A second request whose attempt a dead worker left dialling an hour ago: the
    # reconciler asks Twilio about it (and Twilio cannot say).
    stuck, stuck_sid = new_york_number(), new_sid("CA")
    other = ctx.callbacks.book(number=stuck, queue=f"q-{new_sid('')[:8]}", reason="offer",
                               call_sid=stuck_sid, caller_id=COMPANY_NUMBER)
    row = ctx.store.get(other.callback_id)
    assert ctx.store.claim_attempt(row.id, row.seq, dt.datetime.now(dt.UTC)
                                   - dt.timedelta(hours=1)) is not None

    lines = run_burst_worker(tmp_path, {
        "server": {"public_base_url": PUBLIC_URL, "instance_path": str(tmp_path / "w")},
        "redis": {"url": redis_url, "key_prefix": redis_prefix},
        "database": {"url": database}, "twilio": twilio_section(twilio),
        "flows": {"directory": str(cfg.flows_dir)}, "callbacks": calling})
    assert ctx.store.get(booking.callback_id).state == "failed"  # Twilio refused the call
    app.extensions["ivr"].redis.close()
    app.extensions["ivr"].session_factory.kw["bind"].dispose()

    unsure = [line for line in lines if f"callback {row.id}: cannot ask Twilio" in
              line["message"]]
    assert unsure and unsure[0]["call_sid"] == stuck_sid, lines
    assert f"+1******{stuck[-4:]}" in unsure[0]["message"]
    job, _ = running(lines, f"callback {booking.callback_id} (schedule")
    assert any("Successfully completed" in line["message"] for line in job)  # RQ's own
    assert [line["call_sid"] for line in job] == [due_sid] * len(job), job
    assert due[2:] not in json.dumps(lines) and stuck[2:] not in json.dumps(lines)
