"""A transport that answers each path with a fixed TwiML document and keeps every request:
for testing the simulator on its own, as Twilio's side of the line."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import RequestValidator

from ivr_server.simulator import HttpResult

BASE = "https://ivr.example.test"


class Scripted:
    """A transport answering each path with a fixed TwiML document; keeps every request."""

    base_url = BASE

    def __init__(self, pages: Mapping[str, str | tuple[int, str, str]]):
        self.pages = dict(pages)
        self.sent: list[dict] = []

    def send(self, method: str, url: str, params: Mapping[str, str],
             headers: Mapping[str, str]) -> HttpResult:
        parts = urlsplit(url)
        self.sent.append({"method": method, "url": url, "path": parts.path,
                          "params": dict(params), "query": dict(parse_qsl(parts.query)),
                          "signature": headers["X-Twilio-Signature"]})
        page = self.pages.get(parts.path, "<Response/>")
        if isinstance(page, tuple):
            return HttpResult(*page)
        return HttpResult(200, page, "text/xml; charset=utf-8")

    def to(self, path: str) -> list[dict]:
        return [r for r in self.sent if r["path"] == path]

    def signed(self, request: dict, token: str) -> bool:
        return RequestValidator(token).validate(request["url"], request["params"],
                                                request["signature"])
