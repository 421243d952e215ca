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

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
        values = self.form.get(name) or [""]
        return values[-1]


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
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CallsApi:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                         name="calls-api").start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

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
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                          timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.read(), answer.getheader("Content-Type") or ""
        finally:
            conn.close()

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
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        answer = json.loads(reply)
        call = PlacedCall(new_sid("CA"), form, time.time())
        answer.update(sid=call.sid, to=call.one("To"), from_formatted=call.one("From"),
                      status="queued", date_created=_rfc2822(call.created))
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
        query = parse_qs(urlsplit(path).query)
        to, from_ = (query.get("To") or [""])[0], (query.get("From") or [""])[0]
        page = json.loads(reply)
        page["calls"] = [dict(c.answer, status=c.status) for c in self.placed()
                         if (not to or c.one("To") == to) and (not from_ or
                                                              c.one("From") == from_)]
        page["next_page_uri"] = None  # the journal is the whole answer: one page
        return status, json.dumps(page).encode(), "application/json"

    def fetch(self, path: str, sid: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
        known = next((c for c in self.placed() if c.sid == sid), None)
        if known is None:
            return self.forward("GET", path, b"", headers)
        return 200, json.dumps(dict(known.answer, status=known.status)).encode(), \
            "application/json"


def _handler(api: CallsApi) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are written apart

        def handle_one(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            path = urlsplit(self.path).path
            try:
                if self.command == "POST" and path.endswith(CALLS):
                    answer = api.create(self.path, body, headers)
                elif self.command == "GET" and path.endswith(CALLS):
                    answer = api.listing(self.path, headers)
                elif self.command == "GET" and "/Calls/CA" in path and path.endswith(".json"):
                    answer = api.fetch(self.path, path.rsplit("/", 1)[1][:-5], headers)
                else:
                    answer = api.forward(self.command, self.path, body, headers)
            except ConnectionAbortedError:
                self.close_connection = True
                return
            status, reply, kind = answer
            self.send_response(status)
            self.send_header("Content-Type", kind or "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_DELETE = handle_one

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _rfc2822(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts))
