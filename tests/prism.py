"""Fixture `twilio_api`: Twilio's own REST contract, served on loopback by Stoplight Prism.

The spec comes from npm (`@twilio-alpha/mcp`, pinned in tests/twilio_api/package-lock.json),
tightened by tests/twilio_api/tighten.py, and served by `prism mock`, which answers a request
that breaks the contract with 401 (no Basic auth) or 422 (with the reasons), and a valid one
with the spec's example. Prism answers every valid request with the same example, so tests
assert on what was sent: a small recording proxy in front of Prism keeps each request with
Prism's answer. The proxy also enforces the one rule Prism 5.14 cannot: Prism drops form
fields its schema does not declare before validating, so `additionalProperties: false` (a
typo such as `Bodyy`) would pass; the proxy refuses those with 422, as Twilio would.

Needs Node.js (18.20 or newer) and npm; without them the tests fail, saying so.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ivr_server.simulator import relay
from tests.twilio_api.tighten import FORM, SOURCE, write_tightened
from tests.twilio_api.tighten import HERE as NPM_DIR

PRISM = NPM_DIR / "node_modules" / ".bin" / "prism"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class SeenRequest:
    """One request as it reached the mock, and the mock's answer."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    status: int
    answer: str

    @property
    def fields(self) -> dict[str, str]:
        """The form body with one value per key (the last, as for a plain field)."""
        return {key: values[-1] for key, values in self.form.items()}


class TwilioApiMock:
    """A running mock: `base_url` for the client, `requests` as they were answered."""

    def __init__(self, base_url: str, prism_log: Path, started_in: float):
        self.base_url, self.prism_log, self.started_in = base_url, prism_log, started_in
        self._seen: list[SeenRequest] = []
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def last(self) -> SeenRequest:
        seen = self.requests
        assert seen, "no request reached the Twilio API mock"
        return seen[-1]

    def log_tail(self, lines: int = 40) -> str:
        """Prism's own log (what it validated and why it refused), for failure messages."""
        text = self.prism_log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _record(self, seen: SeenRequest) -> None:
        with self._lock:
            self._seen.append(seen)


@pytest.fixture(scope="session")
def twilio_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwilioApiMock]:
    node_packages()
    with running_mock(tmp_path_factory.mktemp("twilio-api")) as mock:
        yield mock


@contextmanager
def running_mock(workdir: Path,
                 tune: Callable[[ThreadingHTTPServer], None] | None = None
                 ) -> Iterator[TwilioApiMock]:
    """Prism serving the tightened spec from `workdir`, behind the recording proxy (`tune`
    adjusts the proxy's server before it starts). Raises pytest's Failed when Prism does
    not start (node_packages() first)."""
    spec = write_tightened(SOURCE, workdir / "twilio_api_v2010.strict.json")
    closed = closed_forms(json.loads(spec.read_text(encoding="utf-8")))
    port, log = free_port(), workdir / "prism.log"
    started = time.monotonic()
    with log.open("wb") as out:
        prism = subprocess.Popen([str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port),
                                  str(spec)], cwd=NPM_DIR, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering(prism, port, log)
        mock = TwilioApiMock("", log, time.monotonic() - started)
        proxy = relay.serve(recording_proxy(mock, port, closed), "twilio-api-proxy", tune)
        mock.base_url = relay.url_of(proxy)
        try:
            yield mock
        finally:
            relay.stop(proxy)
    finally:
        stop(prism)


def node_packages() -> None:
    """Install Prism and Twilio's spec from npm (package-lock.json) unless they are there."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the Twilio API contract tests need Node.js 18.20+ and npm; "
                    f"{' and '.join(missing)} not found on PATH", pytrace=False)
    lock = hashlib.sha1((NPM_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]
    stamp = NPM_DIR / "node_modules" / f".installed-{lock}"  # the same stamp as ./dev's
    if not (stamp.exists() and PRISM.exists() and SOURCE.exists()):
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NPM_DIR,
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.fail(f"npm ci in {NPM_DIR} failed:\n{done.stderr[-3000:]}", pytrace=False)
        stamp.touch()
    if not SOURCE.exists():
        pytest.fail(f"{SOURCE} is missing: has @twilio-alpha/mcp moved Twilio's spec?",
                    pytrace=False)


def closed_forms(spec: dict[str, Any]) -> list[tuple[str, re.Pattern[str], set[str]]]:
    """(verb, path pattern, declared fields) of every form body that refuses other fields."""
    closed = []
    for template, item in spec["paths"].items():
        for verb, op in item.items():
            if not isinstance(op, dict):
                continue
            schema = op.get("requestBody", {}).get("content", {}).get(FORM, {}).get("schema")
            if schema and schema.get("additionalProperties") is False:
                parts = re.split(r"\{[^/}]+\}", template)
                pattern = re.compile("[^/]+".join(map(re.escape, parts)) + "$")
                closed.append((verb.upper(), pattern, set(schema.get("properties", {}))))
    return closed


def recording_proxy(mock: TwilioApiMock, prism_port: int,
                    closed: list[tuple[str, re.Pattern[str], set[str]]]) -> relay.Respond:
    """Pass each request on to Prism, refuse undeclared form fields, record both."""
    def respond(request: relay.Request) -> relay.Reply:
        reply = relay.forward("127.0.0.1", prism_port, request)
        status, body, headers = reply.status, reply.body, reply.headers
        form = request.form() if FORM in request.headers.get("Content-Type", "") else {}
        unknown = unknown_fields(request.method, request.bare_path, form, closed)
        if unknown and status < 400:
            status, body = 422, json.dumps({
                "type": "https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY",
                "title": "Invalid request", "status": 422,
                "detail": "Fields Twilio does not know (refused by tests/prism.py).",
                "validation": [{"location": ["body", name], "severity": "Error",
                                "code": "additionalProperties",
                                "message": f"Request body must NOT have additional "
                                           f"property '{name}'"} for name in unknown],
            }).encode()
            headers = [("Content-Type", "application/problem+json")]
        mock._record(SeenRequest(request.method, request.path, request.headers, form, status,
                                 body.decode("utf-8", "replace")))
        return relay.Reply(status, body, headers)

    return respond


def unknown_fields(verb: str, path: str, form: dict[str, list[str]],
                   closed: list[tuple[str, re.Pattern[str], set[str]]]) -> list[str]:
    for closed_verb, pattern, declared in closed:
        if verb == closed_verb and pattern.match(path):
            return sorted(set(form) - declared)
    return []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(prism: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if prism.poll() is not None:
            pytest.fail(f"prism mock exited ({prism.returncode}):\n{log.read_text()[-3000:]}",
                        pytrace=False)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.05)
    stop(prism)
    pytest.fail(f"prism mock did not answer within {START_TIMEOUT:.0f}s:\n"
                f"{log.read_text()[-3000:]}", pytrace=False)


def stop(prism: subprocess.Popen[bytes]) -> None:
    """End Prism (and anything it started: it runs in its own process group)."""
    if prism.poll() is not None:
        return
    os.killpg(prism.pid, signal.SIGTERM)
    try:
        prism.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(prism.pid, signal.SIGKILL)
        prism.wait(timeout=10)
