"""A loopback stand-in for Twilio's recordings API, so a simulated caller can speak (path 1).

The server under test fetches RecordingUrl from Twilio's API with the account's
credentials; pointed at this server (twilio.api_base_url), it gets the simulated
caller's audio instead, and its DELETE afterwards is remembered for tests.
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

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._answer(Request(environ))(environ, start_response)

    def _answer(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(
            f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return Response("unauthorized", 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
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
