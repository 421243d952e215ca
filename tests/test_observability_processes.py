"""Metrics across real processes: web processes sharing PROMETHEUS_MULTIPROC_DIR are summed
by one scrape (as gunicorn's workers are), and `ivr worker --metrics-port` serves a worker's
own figures, logging in JSON when told to."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ivr_server import metrics
from ivr_server.simulator import new_sid

from .conftest import ROOT
from .test_observability import scrape, value

WEB_PROCESS = """
import os
import sys
import time

import prometheus_client  # imported before the variable is set, as a gunicorn master may

from ivr_server import create_app
from ivr_server.config import load_config

os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[3]
app = create_app(load_config(sys.argv[1]))
client = app.test_client()
form = {"CallSid": sys.argv[2], "AccountSid": "AC" + "1" * 32, "From": "+14155550100",
        "To": "+15005550006", "CallStatus": "ringing", "Direction": "inbound"}
assert client.post("/voice/incoming", data=form).status_code == 200
form.update(CallStatus="completed", CallDuration="5")
assert client.post("/voice/status", data=form).status_code == 200
# The call's end counts once it is in the call log: write it out (the other process may
# hold the writer's lock and write it instead), as a worker's writer thread would.
ivr = app.extensions["ivr"]
while ivr.writer.drain() or ivr.redis.llen(ivr.calllog.backlog_key):
    time.sleep(0.05)
"""


def process_env(config, **extra: str) -> dict[str, str]:  # noqa: ANN001 - Config
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    env.update(REDIS_URL=config.redis.url, DATABASE_URL=config.database_url,
               IVR_REDIS_PREFIX=config.redis.key_prefix,
               IVR_INSTANCE_PATH=str(config.instance_dir), IVR_FLOWS_DIR=str(config.flows_dir),
               PYTHONPATH=str(ROOT), **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_one_scrape_sums_two_web_processes_and_keeps_their_counts_after_they_die(
        app, config, tmp_path: Path, monkeypatch):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = process_env(config, IVR_DEV_SKIP_SIGNATURES="1")
    workers = [subprocess.Popen([sys.executable, "-c", WEB_PROCESS, str(ROOT / "config.toml"),
                                 new_sid("CA"), str(shared)], env=env, cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(shared))  # this app now scrapes the folder

    body = scrape(app)
    incoming = {"endpoint": "/voice/incoming", "method": "POST", "status": "2xx"}
    assert value(body, "ivr_http_request_duration_seconds_count", **incoming) == 2
    ended = sum(value(body, "ivr_calls_ended_total", outcome=o) for o in metrics.OUTCOMES)
    assert ended == 2
    assert value(body, "ivr_queue_state_up") == 1  # scrape-time gauges come along

    for worker in workers:  # gunicorn's child_exit hook
        metrics.mark_process_dead(worker.pid)
    again = scrape(app)
    assert value(again, "ivr_http_request_duration_seconds_count", **incoming) == 2


@pytest.mark.slow
def test_a_worker_serves_its_own_metrics_on_the_port_it_is_given(config):
    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "ivr_server", "--config", str(ROOT / "config.toml"), "worker",
         "--metrics-port", str(port)],
        env=process_env(config, IVR_LOG_FORMAT="json"), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        body, deadline = None, time.monotonic() + 90
        while body is None:
            assert worker.poll() is None, worker.communicate()[1]
            assert time.monotonic() < deadline, "the worker never served /metrics"
            try:
                body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                time.sleep(0.2)
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=60)
    assert 'ivr_sms_messages_total{event="sent"} 0.0' in body
    assert 'ivr_callbacks_total{event="placed"} 0.0' in body
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    said = [line for line in lines if line["logger"] == "ivr_server.metrics"]
    assert said and said[0]["message"] == f"worker metrics on http://127.0.0.1:{port}/metrics"
