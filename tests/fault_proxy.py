"""Twilio's API misbehaving, on demand: a small HTTP proxy in front of the contract mock.

Put it between the server's Twilio client and the Prism mock (tests/prism.py; or the
Calls journal of ivr_server/simulator/calls_api.py in front of Prism) and tell it how the
next requests to a path go wrong, then everything passes through again:

- `fail_next(n, 429, retry_after=2)`: answer Twilio's error JSON with that status (and a
  Retry-After header), without passing the request on: Twilio did not take it;
- `hang_next(n, seconds, reached=True)`: pass the request on (Twilio took it), then hold
  the answer past the client's timeout; `reached=False` holds it and drops it unsent;
- `slow_next(n, seconds)`: pass the request on and give Twilio's answer that late.

Prism remembers nothing, so the proxy keeps Twilio's memory of messages: each message the
mock accepted gets a SID of its own (written into the answer) and the Messages list answers
`To`/`From` queries from that journal, as Twilio would. `messages()` is what reached
Twilio; `seen` is every request and what the proxy did with it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ivr_server.simulator import relay
from ivr_server.simulator.model import new_sid

MESSAGES = "/Messages.json"
CALLS = "/Calls.json"


@dataclass(frozen=True)
class Fault:
    status: int = 0  # answer this status (0: hang instead)
    retry_after: float | None = None
    seconds: float = 0.0  # hang this long
    reached: bool = False  # hang after passing the request on (Twilio has it)
    answered: bool = False  # then answer after all (a slow answer, within the timeout)

    @property
    def label(self) -> str:
        if self.status:
            return str(self.status)
        if self.answered:
            return "slow answer"
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
        return relay.one(self.form, name)


@dataclass
class Message:
    """A message Twilio accepted."""

    sid: str
    form: dict[str, list[str]]
    created: float
    answer: dict[str, Any] = field(default_factory=dict)

    def one(self, name: str) -> str:
        return relay.one(self.form, name)


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
        self._server = relay.serve(self._respond, "fault-proxy")
        return self

    def close(self) -> None:
        relay.stop(self._server)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return relay.url_of(self._server)

    # -- what goes wrong -----------------------------------------------------------------

    def fail_next(self, count: int, status: int, *, retry_after: float | None = None,
                  on: str = MESSAGES) -> None:
        self._plan(on, [Fault(status=status, retry_after=retry_after)] * count)

    def hang_next(self, count: int, seconds: float, *, reached: bool,
                  on: str = MESSAGES) -> None:
        self._plan(on, [Fault(seconds=seconds, reached=reached)] * count)

    def slow_next(self, count: int, seconds: float, *, on: str = MESSAGES) -> None:
        """Pass the request on, then hold Twilio's answer `seconds` before giving it."""
        self._plan(on, [Fault(seconds=seconds, reached=True, answered=True)] * count)

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

    def _respond(self, request: relay.Request) -> relay.Reply | None:
        """Answer, hang or pass on, as the next planned fault for the path says."""
        fault = self._next_fault(request.method, request.bare_path)
        seen = {"method": request.method, "path": request.path, "form": request.form(),
                "at": time.time()}
        if fault is not None and fault.status:
            self._record(Seen(**seen, what=fault.label, status=fault.status))
            headers = [("Content-Type", "application/json")]
            if fault.retry_after is not None:
                headers.append(("Retry-After", f"{fault.retry_after:g}"))
            return relay.Reply(fault.status, _twilio_error(fault.status), headers)
        if fault is not None and not fault.reached:
            self._record(Seen(**seen, what=fault.label, status=None))
            self.hanging.set()
            time.sleep(fault.seconds)
            return None  # the client gave up long ago
        reply = self.forward(request)
        if fault is not None:  # Twilio has it; its answer is late, or lost on the way back
            self._record(Seen(**seen, what=fault.label,
                              status=reply.status if fault.answered else None))
            self.hanging.set()
            time.sleep(fault.seconds)
            return reply if fault.answered else None
        self._record(Seen(**seen, what="passed", status=reply.status))
        return reply

    # -- passing requests on -------------------------------------------------------------

    def forward(self, request: relay.Request) -> relay.Reply:
        """Pass the request on to Twilio, keeping the messages it accepted."""
        reply = relay.forward(self.upstream.hostname, self.upstream.port, request)
        status, body = reply.status, reply.body
        kind = [("Content-Type", reply.kind or "application/json")]
        if request.method == "POST" and request.bare_path.endswith(MESSAGES) and status == 201:
            return relay.Reply(status, self._accepted(request.body, body), kind)
        if request.method == "GET" and request.bare_path.endswith(MESSAGES) and status == 200:
            return relay.Reply(status, self._listing(request.path, body), kind)
        return relay.Reply(status, body, kind)

    def _accepted(self, body: bytes, reply: bytes) -> bytes:
        message = Message(new_sid("SM"), relay.parse_form(body), time.time())
        answer = json.loads(reply)
        answer.update(sid=message.sid, to=message.one("To"), body=message.one("Body"),
                      status="queued", date_created=relay.rfc2822(message.created),
                      date_sent=None, messaging_service_sid=message.one("MessagingServiceSid")
                      or None)
        answer["from"] = message.one("From") or None
        message.answer = answer
        with self._lock:
            self._messages.append(message)
        return json.dumps(answer).encode()

    def _listing(self, path: str, reply: bytes) -> bytes:
        page = json.loads(reply)
        page["messages"] = [m.answer for m in relay.matching_to_from(
            path, reversed(self.messages()), lambda m: m.form)]  # newest first
        page["next_page_uri"] = None  # the journal is the whole answer: one page
        return json.dumps(page).encode()


def _twilio_error(status: int) -> bytes:
    """The body Twilio answers an error with."""
    message = {429: "Too Many Requests", 500: "Internal Server Error",
               503: "Service Unavailable"}.get(status, "Error")
    return json.dumps({"code": 20000 + status, "message": message, "status": status,
                       "more_info": f"https://www.twilio.com/docs/errors/{20000 + status}"}
                      ).encode()

