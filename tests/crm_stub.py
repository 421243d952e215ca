"""A small real HTTP server standing in for a CRM, for http lookup nodes in tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class CrmStub:
    def __init__(self) -> None:
        self.customers: dict[str, dict] = {}
        self.delay = 0.0
        self.fail_with: int | None = None
        self.requests: list[dict] = []

    def app(self, environ, start_response):  # noqa: ANN001, ANN201 - WSGI
        request = Request(environ)
        self.requests.append({"path": request.path, "args": dict(request.args)})
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with:
            return Response("boom", self.fail_with)(environ, start_response)
        if request.path != "/customers":
            return Response("not found", 404)(environ, start_response)
        customer = self.customers.get(request.args.get("phone", ""))
        if customer is None:
            return Response('{"error": "unknown"}', 404,
                            mimetype="application/json")(environ, start_response)
        return Response(json.dumps(customer), 200,
                        mimetype="application/json")(environ, start_response)


@contextmanager
def running_crm() -> Iterator[tuple[CrmStub, str]]:
    stub = CrmStub()
    server = make_server("127.0.0.1", 0, stub.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield stub, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
