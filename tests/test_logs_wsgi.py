"""Plain `gunicorn ivr_server.wsgi:app` logs as `ivr serve --production` does: the format and
level of [logging], each line of a webhook tagged with its CallSid, callers' numbers masked.
Only gunicorn's master, which never loads the app, keeps its own few start and stop lines."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ivr_server.simulator import new_sid

from .conftest import AUTH_TOKEN, PUBLIC_URL, ROOT, call_params, sign

pytestmark = pytest.mark.slow
GUNICORN_LINE = re.compile(r"^\[[^]]+\] \[\d+\] \[[A-Z]+\] ")  # gunicorn's own format


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path: Path, redis_url: str, prefix: str, database_url: str, crm_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""\
[server]
public_base_url = "{PUBLIC_URL}"
instance_path = "{tmp_path / 'instance'}"
[twilio]
auth_token = "{AUTH_TOKEN}"
[redis]
url = "{redis_url}"
key_prefix = "{prefix}"
[database]
url = "{database_url}"
[flows]
directory = "{ROOT / 'flows' / 'examples'}"
default = "company"
[flows.settings]
crm_url = "{crm_url}"
[sms]
from_number = "+15005550006"
[logging]
format = "json"
""")
    return path


def _post(port: int, path: str, params: dict[str, str], signed: bool = True) -> int:
    headers = {"X-Twilio-Signature": sign(PUBLIC_URL + path, params) if signed else "forged"}
    return requests.post(f"http://127.0.0.1:{port}{path}", data=params, headers=headers,
                         timeout=30).status_code


def test_plain_gunicorn_writes_json_lines_with_the_call_sid_and_masked_numbers(
        tmp_path, redis_url, redis_prefix, database_url, crm):
    config = _config(tmp_path, redis_url, redis_prefix, database_url, crm[1])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IVR_", "TWILIO_", "REDIS_", "DATABASE_", "PUBLIC_"))}
    port, log = _free_port(), tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "4", "-w", "1",
             "--no-control-socket", "-b", f"127.0.0.1:{port}", "ivr_server.wsgi:app"],
            env={**env, "IVR_CONFIG": str(config)}, cwd=tmp_path, stdout=out,
            stderr=subprocess.STDOUT)
    # Nobody's number (area code 999), new each run: the database outlives the test.
    number, sid, forged = f"+1999{random.randrange(10**7):07d}", new_sid("CA"), new_sid("CA")
    try:
        deadline = time.monotonic() + 120  # a bound for a busy 2-core machine
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert _post(port, "/voice/incoming", call_params(sid, From=number)) == 200
        # Long enough for a survey text, which a 999 number cannot take: logged, masked.
        assert _post(port, "/voice/status", call_params(sid, From=number, CallStatus="completed",
                                                        CallDuration="60")) == 200
        assert _post(port, "/voice/incoming", call_params(forged, From=number),
                     signed=False) == 403
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()
    text = log.read_text()
    lines, others = [], []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            others.append(raw)
    assert all(GUNICORN_LINE.match(raw) for raw in others), others  # the master's, only
    refused = [line for line in lines if "not sent" in line["message"]]
    assert refused and refused[0]["call_sid"] == sid, text
    assert f"+1******{number[-4:]}" in refused[0]["message"]
    forgery = [line for line in lines if "X-Twilio-Signature" in line["message"]]
    assert forgery and forgery[0]["call_sid"] == forged and forgery[0]["level"] == "WARNING"
    assert any(line["logger"] == "gunicorn.error" and "Worker exiting" in line["message"]
               for line in lines), "the worker's gunicorn lines go through the same handler"
    assert number[2:] not in text
