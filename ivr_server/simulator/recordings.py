"""A loopback stand-in for the parts of Twilio's REST API a speaking caller needs.

Path 1: the server under test fetches RecordingUrl from Twilio's API with the account's
credentials; pointed at this server (twilio.api_base_url), it gets the simulated caller's
audio instead, and its DELETE afterwards is remembered for tests. Path 2: the server
redirects a live call (POST Calls/{sid}.json with Url and Method); the simulated call
picks the redirect up as Twilio would. The request shapes themselves are checked against
Twilio's OpenAPI contract elsewhere (tests/test_twilio_rest.py, with Prism).
"""

from __future__ import annotations

import base64
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .model import new_sid

TWILIO_API = "https://api.twilio.com"
API_PATH = "/2010-04-01/Accounts/{account}/Recordings/{sid}"
CALL_PATH = "/2010-04-01/Accounts/{account}/Calls/{sid}.json"
SUFFIXES = (".json", ".wav", ".mp3")


class RecordingsServer:
    """Serves registered recordings under Twilio's paths on 127.0.0.1 (started on demand).

    GET needs HTTP basic auth `account_sid:auth_token` (else 401); DELETE answers 204 and
    is listed in `deleted` (recording sids). Use as a context manager or call close()."""

    def __init__(self, account_sid: str, auth_token: str, port: int = 0):
        self.account_sid, self.auth_token, self.port = account_sid, auth_token, port
        self.audio: dict[str, bytes] = {}
        self.fetched: list[str] = []
        self.deleted: list[str] = []
        self.redirects: dict[str, list[tuple[str, str]]] = {}  # call sid -> [(method, url)]
        self._redirected = threading.Condition()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT, the server's twilio.api_base_url (starts the server)."""
        server = self.start()
        return f"http://127.0.0.1:{server.server_port}"

    def start(self) -> BaseWSGIServer:
        with self._lock:
            if self._server is None:
                self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
                self._thread = threading.Thread(target=self._server.serve_forever,
                                                kwargs={"poll_interval": 0.05}, daemon=True,
                                                name="simulated-recordings")
                self._thread.start()
            return self._server

    def close(self) -> None:
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> RecordingsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, audio: bytes) -> tuple[str, str]:
        """Register a recording; returns (RecordingSid, RecordingUrl as Twilio gives it)."""
        self.start()
        sid = new_sid("RE")
        self.audio[sid] = audio
        return sid, TWILIO_API + API_PATH.format(account=self.account_sid, sid=sid)

    def wait_deleted(self, sid: str, timeout: float = 5.0) -> bool:
        """True once the server under test deleted `sid` (it deletes beside the webhook)."""
        import time

        deadline = time.monotonic() + timeout
        while sid not in self.deleted and time.monotonic() < deadline:
            time.sleep(0.02)
        return sid in self.deleted

    def wait_redirect(self, call_sid: str, timeout: float) -> tuple[str, str] | None:
        """The next (method, url) the server redirected `call_sid` to, if one comes in time."""
        with self._redirected:
            self._redirected.wait_for(lambda: bool(self.redirects.get(call_sid)), timeout)
            queue = self.redirects.get(call_sid) or []
            return queue.pop(0) if queue else None

    def _redirect_call(self, request: Request) -> Response:
        prefix = CALL_PATH.format(account=self.account_sid, sid="").removesuffix(".json")
        call_sid = request.path.removeprefix(prefix).removesuffix(".json")
        url = request.form.get("Url", "")
        method = request.form.get("Method", "POST").upper()
        if not url.startswith(("https://", "http://")) or method not in ("GET", "POST"):
            return Response('{"code": 21205, "message": "Url is not valid"}', 400,
                            mimetype="application/json")
        with self._redirected:
            self.redirects.setdefault(call_sid, []).append((method, url))
            self._redirected.notify_all()
        return Response(f'{{"sid": "{call_sid}", "status": "in-progress"}}', 200,
                        mimetype="application/json")

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._answer(Request(environ))(environ, start_response)

    def _answer(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(
            f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return Response("unauthorized", 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        calls = CALL_PATH.format(account=self.account_sid, sid="").removesuffix(".json")
        if request.method == "POST" and request.path.startswith(calls):
            return self._redirect_call(request)
        prefix = API_PATH.format(account=self.account_sid, sid="")
        sid = request.path.removeprefix(prefix) if request.path.startswith(prefix) else ""
        for suffix in SUFFIXES:
            sid = sid.removesuffix(suffix)
        if sid not in self.audio:
            return Response('{"code": 20404, "message": "not found"}', 404,
                            mimetype="application/json")
        if request.method == "DELETE":
            self.deleted.append(sid)
            del self.audio[sid]  # gone, as on Twilio
            return Response(b"", 204)
        if request.method not in ("GET", "HEAD"):
            return Response("method not allowed", 405)
        self.fetched.append(sid)
        return Response(self.audio[sid], 200, mimetype="audio/x-wav")
