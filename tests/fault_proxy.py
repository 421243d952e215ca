"""Twilio's API misbehaving, on demand: a small HTTP proxy in front of the contract mock.

Put it between the server's Twilio client and the Prism mock (tests/prism.py; or the
Calls journal of ivr_server/simulator/calls_api.py in front of Prism) and tell it how the
next requests to a path go wrong, then everything passes through again:

- `fail_next(n, 429, retry_after=2)`: answer Twilio's error JSON with that status (and a
  Retry-After header), without passing the request on: Twilio did not take it;
- `hang_next(n, seconds, reached=True)`: pass the request on (Twilio took it), then hold
  the answer past the client's timeout; `reached=False` holds it and drops it unsent.

Prism remembers nothing, so the proxy keeps Twilio's memory of messages: each message the
mock accepted gets a SID of its own (written into the answer) and the Messages list answers
`To`/`From` queries from that journal, as Twilio would. `messages()` is what reached
Twilio; `seen` is every request and what the proxy did with it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ivr_server.simulator.model import new_sid

MESSAGES = "/Messages.json"
CALLS = "/Calls.json"


@dataclass(frozen=True)
class Fault:
    status: int = 0  # answer this status (0: hang instead)
    retry_after: float | None = None
    seconds: float = 0.0  # hang this long
    reached: bool = False  # hang after passing the request on (Twilio has it)

    @property
    def label(self) -> str:
        if self.status:
            return str(self.status)
        return "hang (reached Twilio)" if self.reached else "hang (dropped)"


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it: `what` is "passed" or the fault's label; `status`
    the answer sent (None when none was)."""

    method: str
    path: str
    form: dict[str, list[str]]
    what: str
    status: int | None
    at: float

    def one(self, name: str) -> str:
        return (self.form.get(name) or [""])[-1]


@dataclass
class Message:
    """A message Twilio accepted."""

    sid: str
    form: dict[str, list[str]]
    created: float
    answer: dict[str, Any] = field(default_factory=dict)

    def one(self, name: str) -> str:
        return (self.form.get(name) or [""])[-1]


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self._faults: dict[str, deque[Fault]] = {}
        self._seen: list[Seen] = []
        self._messages: list[Message] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        # Set when a request starts to hang (once Twilio has it, for reached=True): the
        # moment to kill a worker waiting for the answer.
        self.hanging = threading.Event()

    # -- running -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                         name="fault-proxy").start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what goes wrong -----------------------------------------------------------------

    def fail_next(self, count: int, status: int, *, retry_after: float | None = None,
                  on: str = MESSAGES) -> None:
        self._plan(on, [Fault(status=status, retry_after=retry_after)] * count)

    def hang_next(self, count: int, seconds: float, *, reached: bool,
                  on: str = MESSAGES) -> None:
        self._plan(on, [Fault(seconds=seconds, reached=reached)] * count)

    def _plan(self, on: str, faults: list[Fault]) -> None:
        with self._lock:
            self._faults.setdefault(on, deque()).extend(faults)

    def _next_fault(self, method: str, path: str) -> Fault | None:
        if method != "POST":
            return None  # lists and fetches (how a lost answer is settled) always work
        with self._lock:
            for suffix, planned in self._faults.items():
                if path.endswith(suffix) and planned:
                    return planned.popleft()
        return None

    # -- what happened -------------------------------------------------------------------

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def creates(self, on: str = MESSAGES) -> list[Seen]:
        """Every create request (POST) to `on`, however it was answered."""
        return [s for s in self.seen if s.method == "POST" and s.path.endswith(on)]

    def messages(self) -> list[Message]:
        """The messages Twilio accepted: what the recipients' phones get."""
        with self._lock:
            return list(self._messages)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    # -- passing requests on -------------------------------------------------------------

    def forward(self, method: str, path: str, body: bytes,
                headers: dict[str, str]) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                          timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            answer = conn.getresponse()
            status, reply = answer.status, answer.read()
            kind = answer.getheader("Content-Type") or "application/json"
        finally:
            conn.close()
        bare = urlsplit(path).path
        if method == "POST" and bare.endswith(MESSAGES) and status == 201:
            reply = self._accepted(body, reply)
        elif method == "GET" and bare.endswith(MESSAGES) and status == 200:
            reply = self._listing(path, reply)
        return status, reply, kind

    def _accepted(self, body: bytes, reply: bytes) -> bytes:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        message = Message(new_sid("SM"), form, time.time())
        answer = json.loads(reply)
        answer.update(sid=message.sid, to=message.one("To"), body=message.one("Body"),
                      status="queued", date_created=_rfc2822(message.created),
                      date_sent=None, messaging_service_sid=message.one("MessagingServiceSid")
                      or None)
        answer["from"] = message.one("From") or None
        message.answer = answer
        with self._lock:
            self._messages.append(message)
        return json.dumps(answer).encode()

    def _listing(self, path: str, reply: bytes) -> bytes:
        query = parse_qs(urlsplit(path).query)
        to, from_ = (query.get("To") or [""])[0], (query.get("From") or [""])[0]
        page = json.loads(reply)
        page["messages"] = [m.answer for m in reversed(self.messages())  # newest first
                            if (not to or m.one("To") == to)
                            and (not from_ or m.one("From") == from_)]
        page["next_page_uri"] = None  # the journal is the whole answer: one page
        return json.dumps(page).encode()


def _handler(proxy: FaultProxy) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are written apart

        def handle_one(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            fault = proxy._next_fault(self.command, urlsplit(self.path).path)
            seen = {"method": self.command, "path": self.path, "form": form,
                    "at": time.time()}
            if fault is not None and fault.status:
                proxy._record(Seen(**seen, what=fault.label, status=fault.status))
                self._answer(fault.status, _twilio_error(fault.status), "application/json",
                             {"Retry-After": f"{fault.retry_after:g}"}
                             if fault.retry_after is not None else {})
                return
            if fault is not None and not fault.reached:
                proxy._record(Seen(**seen, what=fault.label, status=None))
                proxy.hanging.set()
                time.sleep(fault.seconds)
                self.close_connection = True  # the client gave up long ago
                return
            status, reply, kind = proxy.forward(self.command, self.path, body, headers)
            if fault is not None:  # Twilio has it; its answer is lost on the way back
                proxy._record(Seen(**seen, what=fault.label, status=None))
                proxy.hanging.set()
                time.sleep(fault.seconds)
                self.close_connection = True
                return
            proxy._record(Seen(**seen, what="passed", status=status))
            self._answer(status, reply, kind, {})

        def _answer(self, status: int, reply: bytes, kind: str,
                    extra: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_DELETE = handle_one

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _twilio_error(status: int) -> bytes:
    """The body Twilio answers an error with."""
    message = {429: "Too Many Requests", 500: "Internal Server Error",
               503: "Service Unavailable"}.get(status, "Error")
    return json.dumps({"code": 20000 + status, "message": message, "status": status,
                       "more_info": f"https://www.twilio.com/docs/errors/{20000 + status}"}
                      ).encode()


def _rfc2822(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts))
