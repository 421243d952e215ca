"""`kill -HUP` on `ivr serve --production`: gunicorn's graceful reload. New workers build
their apps from config.toml as it is now; what only a restart applies keeps its running
value and is named in the log; a broken file changes nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr_server.config import ENV_OVERRIDES, load_config
from ivr_server.production import reread
from ivr_server.simulator import HttpTransport, SimulatedCall

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .production_procs import Server, config_text, start_server
from .test_production import CALLERS

LINE_FLOW = """\
flow: {name}
start: hello
nodes:
  hello: {{ type: hangup, say: "You have reached {name}." }}
"""


def test_sighup_keeps_what_the_arbiter_set_up_and_a_broken_file_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    for var in ENV_OVERRIDES:
        monkeypatch.delenv(var, raising=False)
    file = tmp_path / "config.toml"
    file.write_text('[fallback]\nvoice = "Polly.Joanna"\n')
    as_read = load_config(file)
    running = as_read.with_section("redis", url="redis://127.0.0.1:7777/0")  # embedded Redis
    file.write_text('[fallback]\nvoice = "Polly.Matthew"\n\n[server]\nworkers = 9\n')

    fresh = reread(running, as_read, file)
    assert fresh.fallback.voice == "Polly.Matthew"  # new workers say it in the new voice
    assert fresh.redis.url == running.redis.url and fresh.server.workers == 0
    assert "kept as running): [server] workers" in caplog.text  # not the Redis URL

    file.write_text("[fallback\n")
    assert reread(running, as_read, file) is running
    assert "the workers keep the running configuration" in caplog.text


@pytest.fixture
def server(tmp_path: Path, redis_url: str, redis_prefix: str, database_url: str
           ) -> Iterator[Server]:
    """One worker serving a number that the `sales` flow answers, from hup/config.toml."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("sales", "support"):
        (flows / f"{name}.yaml").write_text(LINE_FLOW.format(name=name))
    started = start_server(tmp_path, "hup", config_text(flows, {CALLERS: "sales"}), {
        "REDIS_URL": redis_url, "IVR_REDIS_PREFIX": redis_prefix, "DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": PUBLIC_URL, "IVR_WORKERS": "1",
        "IVR_THREADS": "2"})
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait(30)


@pytest.mark.slow
def test_sighup_gives_new_workers_the_edited_config_toml_and_names_what_needs_a_restart(
        tmp_path: Path, server: Server):
    def heard() -> list[str]:
        call = SimulatedCall(HttpTransport(server.url, public_base_url=PUBLIC_URL),
                             AUTH_TOKEN, to=CALLERS)
        call.dial()
        return call.heard

    assert "You have reached sales." in heard()
    (tmp_path / "hup" / "config.toml").write_text(config_text(
        tmp_path / "flows", {CALLERS: "support"}, "[server]\ntimeout = 45\n"))
    server.process.send_signal(signal.SIGHUP)

    deadline = time.monotonic() + 60  # a bound for a busy machine, not a measurement
    while "You have reached support." not in (now := heard()):
        assert "You have reached sales." in now  # the old worker, finishing up
        assert time.monotonic() < deadline, f"still the old config:\n{server.output()}"
        time.sleep(0.2)
    assert server.process.poll() is None  # the same server: reloaded, not restarted
    assert "only a full restart applies (kept as running): [server] timeout" in server.output()
    assert server.stop() == 0, server.output()
