"""A worker SIGKILLed while it sends a text: the job is recovered and the text reaches the
caller exactly once, whether or not Twilio had taken it when the worker died. Real `ivr
worker` processes, real Redis, RQ and SQL, Twilio's contract (Prism) behind the fault
proxy, which keeps Twilio's memory of the messages it accepted. (Callbacks: see
test_callback_faults.py.)"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rq.registry import StartedJobRegistry

from ivr_server.config import SmsConfig
from ivr_server.db import make_engine, make_session_factory, upgrade
from ivr_server.redis_conn import connect
from ivr_server.sms_outbox import QUEUE_NAME, SmsOutbox
from ivr_server.sms_store import SmsStore
from tests.prism import TwilioApiMock

from .callback_rig import ACCOUNT
from .conftest import AUTH_TOKEN, ROOT
from .db_fixtures import fresh_database
from .fault_proxy import FaultProxy
from .helpers import fresh_number
from .worker_procs import children, kill_worker

pytestmark = pytest.mark.slow
IVR = Path(sys.executable).with_name("ivr")
SENDER = "+15005550006"
# How often the worker's passes run (the callbacks' reconciler, lost texts, and retrying
# the jobs of a worker that died), in seconds: `callbacks.reconcile_interval`.
PASSES_EVERY = 1


@pytest.fixture
def setup(tmp_path: Path, redis_url: str, redis_prefix: str,
          twilio_api: TwilioApiMock) -> Iterator[dict[str, Any]]:
    stack = contextlib.ExitStack()
    # A database of its own: a worker also looks after every callback request it holds.
    database = stack.enter_context(fresh_database(tmp_path))
    upgrade(database)
    proxy = stack.enter_context(FaultProxy(twilio_api.base_url))
    engine = make_engine(database)
    stack.callback(engine.dispose)
    store = SmsStore(make_session_factory(engine))
    jobs = connect(redis_url, decode=False)
    stack.callback(jobs.close)
    # The web side's queue ("sms" after the key prefix), with immediate retries.
    box = SmsOutbox(jobs, store, SmsConfig(from_number=SENDER, retry_intervals="0,0,0"),
                    lambda: dt.datetime.now(dt.UTC), queue_name=f"{redis_prefix}{QUEUE_NAME}")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({"REDIS_URL": redis_url, "DATABASE_URL": database,
                "IVR_REDIS_PREFIX": redis_prefix, "IVR_INSTANCE_PATH": str(tmp_path / "w"),
                "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_API_BASE_URL": proxy.base_url, "TWILIO_SMS_FROM": SENDER})
    config = tmp_path / "worker.toml"  # the rest from the environment and the defaults
    config.write_text(f'[flows]\ndirectory = "{ROOT / "flows" / "examples"}"\n'
                      f'[callbacks]\nreconcile_interval = {PASSES_EVERY}\n')
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(workers)}.log").open("wb")
        worker = subprocess.Popen([str(IVR), "--config", str(config), "worker"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        workers.append(worker)
        return worker

    yield {"box": box, "store": store, "proxy": proxy, "start_worker": start_worker,
           "logs": tmp_path, "jobs": jobs}
    for worker in workers:
        kill_worker(worker)
    for key in jobs.scan_iter(match=f"rq:*{box.queue.name}*".encode(), count=500):
        jobs.delete(key)
    stack.close()


def until(check: Callable[[], bool], timeout: float, what: str, setup: dict[str, Any]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    logs = "\n".join(p.read_text(errors="replace")[-2000:]
                     for p in sorted(setup["logs"].glob("worker-*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def heartbeat_lapsed(setup: dict[str, Any]) -> None:
    """Let the two minutes pass after which RQ takes a dead worker's job for abandoned (its
    heartbeat: the text's 60 s timeout plus a minute), once the new worker has done RQ's
    own upkeep at its start (which would retry the job too, then not for 10 minutes).
    Retrying it is left to the new worker's recovery pass."""
    jobs, queue = setup["jobs"], setup["box"].queue
    log = max(setup["logs"].glob("worker-*.log"), key=lambda p: int(p.stem.split("-")[1]))
    until(lambda: f"cleaning registries for queue: {queue.name}" in log.read_text(
        errors="replace") and not jobs.exists(queue.registry_cleaning_key), 60,
        "the new worker's upkeep at its start", setup)
    started = StartedJobRegistry(queue=queue)
    dead = jobs.zrange(started.key, 0, -1)
    assert dead, "the dead worker's job is no longer marked as running"
    jobs.zadd(started.key, dict.fromkeys(dead, time.time() - 1))


@pytest.mark.parametrize("reached", [True, False], ids=["after-twilio-took-it", "before"])
def test_a_text_whose_worker_was_killed_mid_send_reaches_the_caller_exactly_once(
        setup, reached):
    box, store, proxy = setup["box"], setup["store"], setup["proxy"]
    to = fresh_number()
    message = box.send(kind="wait_estimate", to=to, body="You're next in line.")
    proxy.hang_next(1, 30, reached=reached)  # Twilio's answer never comes back

    worker = setup["start_worker"]()
    until(proxy.hanging.is_set, 60, "the worker to ask Twilio to send the text", setup)
    kill_worker(worker)
    assert store.message(message).status == "sending"
    assert len(proxy.messages()) == (1 if reached else 0)

    setup["start_worker"]()
    heartbeat_lapsed(setup)
    until(lambda: store.message(message).status == "sent", 10 * PASSES_EVERY + 20,
          "the new worker to retry the dead worker's job and send the text", setup)

    [sent] = proxy.messages()
    assert (sent.one("To"), sent.one("Body")) == (to, "You're next in line.")
    assert store.message(message).message_sid == sent.sid
    assert len(proxy.creates()) == (1 if reached else 2)  # found at Twilio, not re-sent
    time.sleep(2)  # a late duplicate would show up here
    assert len(proxy.messages()) == 1


@pytest.mark.parametrize("after", [0.5, 1.5, 3.0, None], ids=["0.5s", "1.5s", "3s", "working"])
def test_a_worker_stopped_at_any_moment_of_its_start_ends_and_leaves_no_process_behind(
        setup, after):
    """A deploy or `systemctl stop` SIGTERMs a worker whenever it likes. RQ's scheduler was a
    process the worker forked as it started; a SIGTERM landing between that fork and RQ's
    signal handlers ended the worker's loop but left the worker waiting on the scheduler
    forever (CI once caught it)."""
    worker = setup["start_worker"]()
    log = setup["logs"] / f"worker-{len(list(setup['logs'].glob('worker-*.log'))) - 1}.log"
    if after is None:
        until(lambda: "Listening on" in log.read_text(errors="replace"), 60,
              "the worker to listen", setup)
        time.sleep(1)  # its threads and RQ's loop are running
    else:
        time.sleep(after)
    assert children(worker.pid) == []  # nothing forked for stop to wait on
    worker.terminate()
    try:
        assert worker.wait(20) is not None
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker did not stop\n{log.read_text()[-2000:]}") from None
