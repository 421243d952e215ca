"""Loopback HTTP relays in front of Twilio's contract mock (Prism), on one piece of code.

The simulator's Calls journal (calls_api.py) and the tests' recording and fault proxies all
read a request, pass it on to the mock, perhaps rewrite the answer, and send it back. This
module is that shared part: serving on a free loopback port, forwarding, answering, and the
Twilio-style journal helpers (one form value, To/From list filters, RFC 2822 dates).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

HOP_HEADERS = ("connection", "transfer-encoding", "content-length")


@dataclass(frozen=True)
class Request:
    """One request as a relay received it (without its Connection header)."""

    method: str
    path: str  # with the query
    body: bytes
    headers: dict[str, str]

    @property
    def bare_path(self) -> str:
        return urlsplit(self.path).path

    def form(self) -> dict[str, list[str]]:
        return parse_form(self.body)


@dataclass(frozen=True)
class Reply:
    """An answer to send back: status, body and headers (Content-Length is added)."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The Content-Type ("" when none)."""
        return next((v for k, v in self.headers if k.lower() == "content-type"), "")


# What a relay does with a request: the reply, or None to close the connection unanswered.
Respond = Callable[[Request], Reply | None]


def forward(host: str | None, port: int | None, request: Request,
            timeout: float = 30) -> Reply:
    """Pass `request` on to host:port; its answer with the hop-by-hop headers dropped."""
    conn = http.client.HTTPConnection(host or "127.0.0.1", port, timeout=timeout)
    try:
        conn.request(request.method, request.path, body=request.body or None,
                     headers=request.headers)
        answer = conn.getresponse()
        return Reply(answer.status, answer.read(),
                     [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_HEADERS])
    finally:
        conn.close()


def handler_for(respond: Respond) -> type[BaseHTTPRequestHandler]:
    """A request handler that reads each request, asks `respond`, and sends the reply."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are written apart

        def handle_one(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            reply = respond(Request(self.command, self.path, body, headers))
            if reply is None:
                self.close_connection = True
                return
            self.send_response(reply.status)
            for key, value in reply.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = handle_one

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the relays keep what they saw themselves

    return Handler


def serve(respond: Respond, name: str,
          tune: Callable[[ThreadingHTTPServer], None] | None = None) -> ThreadingHTTPServer:
    """Serve `respond` on a free loopback port in a daemon thread (`tune` adjusts the server
    before it starts); end it with `stop`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(respond))
    server.daemon_threads = True
    if tune is not None:
        tune(server)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True,
                     name=name).start()
    return server


def stop(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def url_of(server: ThreadingHTTPServer | None) -> str:
    assert server is not None, "start() first"
    return f"http://127.0.0.1:{server.server_address[1]}"


def parse_form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def one(form: dict[str, list[str]], name: str) -> str:
    """A form field's value (the last, as for a plain field); "" when absent."""
    return (form.get(name) or [""])[-1]


T = TypeVar("T")


def matching_to_from(path: str, items: Iterable[T],
                     form_of: Callable[[T], dict[str, list[str]]]) -> list[T]:
    """The journal entries a Twilio list query's `To`/`From` filters select."""
    query = parse_qs(urlsplit(path).query)
    to, from_ = (query.get("To") or [""])[0], (query.get("From") or [""])[0]
    return [item for item in items
            if (not to or one(form_of(item), "To") == to)
            and (not from_ or one(form_of(item), "From") == from_)]


def rfc2822(ts: float) -> str:
    """A Unix time as Twilio writes dates (date_created)."""
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts))
