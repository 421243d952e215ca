"""How simulated Twilio requests reach the server: in-process (tests) or over HTTP (`ivr call`).

Both transports take URLs in the server's *public* URL space, the one Twilio
signs, so a signature computed here checks out on the server exactly as a real
Twilio request's would.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from twilio.request_validator import RequestValidator
from werkzeug.serving import BaseWSGIServer, make_server


class TransportError(RuntimeError):
    """The request could not be delivered (connection refused, timeout, a URL off the server)."""


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: str
    content_type: str


class Transport(Protocol):
    base_url: str  # the public base URL: requests are signed against URLs under it

    def send(self, method: str, url: str, params: Mapping[str, str],
             headers: Mapping[str, str]) -> HttpResult: ...

    def websocket_url(self, url: str) -> str:
        """Where to open a websocket that Twilio would open at `url` (wss:// public)."""
        ...


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a request: HMAC-SHA1 over URL + sorted POST params, base64."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def _strip(base: str) -> str:
    return base.rstrip("/")


class InProcessTransport:
    """Calls a Flask app through its test client, so request.url equals base_url + path."""

    def __init__(self, app: Any, base_url: str = "https://ivr.example.test"):
        self.app = app
        self.base_url = _strip(base_url)
        self.client = app.test_client()
        self._server: BaseWSGIServer | None = None

    def send(self, method: str, url: str, params: Mapping[str, str],
             headers: Mapping[str, str]) -> HttpResult:
        if not (url == self.base_url or url.startswith(self.base_url + "/")
                or url.startswith(self.base_url + "?")):
            raise TransportError(f"{url} is not on the server under test ({self.base_url})")
        path = url[len(self.base_url):] or "/"
        kwargs: dict[str, Any] = {"method": method, "base_url": self.base_url,
                                  "headers": dict(headers)}
        if method == "POST":
            kwargs["data"] = dict(params)
        resp = self.client.open(path, **kwargs)
        try:
            body = resp.get_data(as_text=True)
        finally:
            resp.close()
        return HttpResult(resp.status_code, body, resp.headers.get("Content-Type", ""))

    def websocket_url(self, url: str) -> str:
        """Websockets cannot go through the test client: the app is also served on a
        loopback socket (started on first use, in this process) for media streams."""
        if self._server is None:
            self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True, name="in-process-websockets").start()
        return _websocket_url(url, self.base_url, f"http://127.0.0.1:{self._server.server_port}")

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _ws_base(http_base: str) -> str:
    return http_base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def _websocket_url(url: str, public_base: str, connect_base: str) -> str:
    public = _ws_base(public_base)
    if not (url == public or url.startswith(public + "/")):
        raise TransportError(f"{url} is not on the server under test ({public})")
    return _ws_base(connect_base) + url[len(public):]


class HttpTransport:
    """Sends to a running server. `base_url` is where to connect; `public_base_url` (if the
    server sits behind a tunnel or proxy) is the URL space Twilio would use and sign."""

    def __init__(self, base_url: str, *, public_base_url: str | None = None,
                 timeout: float = 10.0, session: requests.Session | None = None):
        self.connect_url = _strip(base_url)
        self.base_url = _strip(public_base_url or base_url)
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, method: str, url: str, params: Mapping[str, str],
             headers: Mapping[str, str]) -> HttpResult:
        real = self.connect_url + url[len(self.base_url):] \
            if url.startswith(self.base_url) else url
        try:
            resp = self.session.request(method, real, data=dict(params) if method == "POST"
                                        else None, headers=dict(headers), timeout=self.timeout,
                                        allow_redirects=False)
        except requests.RequestException as exc:
            raise TransportError(f"{method} {real}: {exc}") from None
        return HttpResult(resp.status_code, resp.text, resp.headers.get("Content-Type", ""))

    def websocket_url(self, url: str) -> str:
        return _websocket_url(url, self.base_url, self.connect_url)


class AlternatingTransport:
    """Sends each request (and websocket) to the next of several servers in turn, all behind
    one public URL, as a balancer without sticky sessions would: a call that completes this
    way needs nothing kept in one server's memory. `served` counts requests per server."""

    def __init__(self, base_urls: Sequence[str], *, public_base_url: str,
                 timeout: float = 10.0):
        if not base_urls:
            raise ValueError("AlternatingTransport needs at least one server")
        self.base_url = _strip(public_base_url)
        self.servers = [HttpTransport(url, public_base_url=public_base_url, timeout=timeout)
                        for url in base_urls]
        self.served = {server.connect_url: 0 for server in self.servers}
        self._turn = 0
        self._lock = threading.Lock()

    def _next(self) -> HttpTransport:
        with self._lock:
            server = self.servers[self._turn % len(self.servers)]
            self._turn += 1
            self.served[server.connect_url] += 1
        return server

    def send(self, method: str, url: str, params: Mapping[str, str],
             headers: Mapping[str, str]) -> HttpResult:
        return self._next().send(method, url, params, headers)

    def websocket_url(self, url: str) -> str:
        return self._next().websocket_url(url)
