"""Twilio's memory of outbound calls, in front of a stateless contract mock.

Prism validates every request against Twilio's OpenAPI description but remembers nothing:
it answers every call with the same example SID and lists no calls we placed. Settling an
attempt after a crash needs what Twilio would know, so this proxy forwards everything to
the mock and, for calls it accepted, keeps a journal: each gets a SID of its own (written
into the mock's answer), the Calls list answers `To`/`From` queries from the journal, a
call's fetch reports its journalled status, and `initiated` is posted to the call's
StatusCallback as Twilio does. `hold` delays (or `drop` swallows) create requests, so a
test can kill a worker while its request is in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from . import relay
from .model import new_sid

CALLS = "/Calls.json"


@dataclass
class PlacedCall:
    sid: str
    form: dict[str, list[str]]
    created: float
    status: str = "queued"
    answer: dict[str, Any] = field(default_factory=dict)

    def one(self, name: str) -> str:
        return relay.one(self.form, name)


class CallsApi:
    """Run with `start()`; `base_url` is what the server's TWILIO_API_BASE_URL points at."""

    def __init__(self, upstream: str, *, hold: float = 0.0, drop: bool = False,
                 status_poster: Callable[[PlacedCall, str], None] | None = None):
        self.upstream = urlsplit(upstream)
        self.hold, self.drop = hold, drop
        self.status_poster = status_poster  # posts a status callback (e.g. "initiated")
        self.calls: list[PlacedCall] = []
        self.arrived = threading.Event()  # a create request reached us (before holding)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return relay.url_of(self._server)

    def start(self) -> CallsApi:
        self._server = relay.serve(self._respond, "calls-api")
        return self

    def close(self) -> None:
        relay.stop(self._server)

    def placed(self) -> list[PlacedCall]:
        with self._lock:
            return list(self.calls)

    def set_status(self, sid: str, status: str) -> None:
        with self._lock:
            for call in self.calls:
                if call.sid == sid:
                    call.status = status

    # -- requests ----------------------------------------------------------------------------

    def forward(self, method: str, path: str, body: bytes,
                headers: dict[str, str]) -> tuple[int, bytes, str]:
        reply = relay.forward(self.upstream.hostname, self.upstream.port,
                              relay.Request(method, path, body, headers))
        return reply.status, reply.body, reply.kind

    def create(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        hold, drop = self.hold, self.drop  # as they were when the request arrived
        self.arrived.set()
        if hold:
            time.sleep(hold)
        if drop:
            raise ConnectionAbortedError("dropped before it reached Twilio")
        status, reply, kind = self.forward("POST", path, body, headers)
        if status != 201:
            return status, reply, kind
        answer = json.loads(reply)
        call = PlacedCall(new_sid("CA"), relay.parse_form(body), time.time())
        answer.update(sid=call.sid, to=call.one("To"), from_formatted=call.one("From"),
                      status="queued", date_created=relay.rfc2822(call.created))
        answer["from"] = call.one("From")
        call.answer = answer
        with self._lock:
            self.calls.append(call)
        if self.status_poster is not None:
            threading.Thread(target=self.status_poster, args=(call, "initiated"),
                             daemon=True).start()
        return status, json.dumps(answer).encode(), "application/json"

    def listing(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
        status, reply, kind = self.forward("GET", path, b"", headers)
        if status != 200:
            return status, reply, kind
        page = json.loads(reply)
        page["calls"] = [dict(c.answer, status=c.status) for c in
                         relay.matching_to_from(path, self.placed(), lambda c: c.form)]
        page["next_page_uri"] = None  # the journal is the whole answer: one page
        return status, json.dumps(page).encode(), "application/json"

    def fetch(self, path: str, sid: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
        known = next((c for c in self.placed() if c.sid == sid), None)
        if known is None:
            return self.forward("GET", path, b"", headers)
        return 200, json.dumps(dict(known.answer, status=known.status)).encode(), \
            "application/json"

    def _respond(self, request: relay.Request) -> relay.Reply | None:
        path, body, headers = request.bare_path, request.body, request.headers
        try:
            if request.method == "POST" and path.endswith(CALLS):
                answer = self.create(request.path, body, headers)
            elif request.method == "GET" and path.endswith(CALLS):
                answer = self.listing(request.path, headers)
            elif request.method == "GET" and "/Calls/CA" in path and path.endswith(".json"):
                answer = self.fetch(request.path, path.rsplit("/", 1)[1][:-5], headers)
            else:
                answer = self.forward(request.method, request.path, body, headers)
        except ConnectionAbortedError:
            return None
        status, reply, kind = answer
        return relay.Reply(status, reply, [("Content-Type", kind or "application/json")])

