"""Every URL the server answers is either Twilio's (X-Twilio-Signature checked, unsigned
requests and handshakes get 403) or on a short allowlist, each entry with its own access
rule tested here. A route added later that is neither fails this test with what to do.

`/admin` pages are guarded by sign-in (tests/admin/ walks their URL map) and `/static`
serves files only, so both are left out here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from simple_websocket import Client
from simple_websocket import ConnectionError as HandshakeRefused
from werkzeug.routing import Rule

from ivr_server import create_app
from ivr_server.simulator.transport import InProcessTransport
from speech.model import default_model_path

from .conftest import PUBLIC_URL, call_params, sign

AGENTS_TOKEN = "agents-api-token-" + "4" * 16
METRICS_TOKEN = "metrics-token-" + "5" * 16
SKIPPED = ("/admin", "/static")
OUTSIDE = "203.0.113.9"  # a documentation address: not this machine
WHAT_TO_DO = (
    "{rule} ({endpoint}) answers without an X-Twilio-Signature and is not on the allowlist. "
    "If Twilio calls it, register it on a blueprint whose before_request checks the "
    "signature (see ivr_server/voice.py require_signature, sms_hooks.py). If people or other "
    "machines call it, add it to ALLOWLIST in tests/test_route_access.py with a function "
    "that tests its own access rule (a token, loopback only, ...) and say why in its doc.")


@pytest.fixture
def full_app(config, clock) -> Iterator[Flask]:  # noqa: ANN001 - every optional feature switched on
    model = default_model_path()
    cfg = (config.with_section("twilio", account_sid="AC" + "7" * 32,
                               api_base_url="http://127.0.0.1:9")
           .with_section("queues", api_token=AGENTS_TOKEN))
    if model is not None:
        cfg = cfg.with_section("speech", model_path=str(model))
    app = create_app(cfg, clock=clock)
    yield app
    app.extensions["ivr"].redis.close()


@pytest.fixture
def transport(full_app: Flask) -> Iterator[InProcessTransport]:
    transport = InProcessTransport(full_app, PUBLIC_URL)
    yield transport
    transport.close()


def _path(app: Flask, rule: Rule) -> str:
    adapter = app.url_map.bind("ivr.example.test")
    built = adapter.build(rule.endpoint, {name: "x" for name in rule.arguments})
    return urlsplit(built).path  # a websocket rule builds as ws://host/path


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


# -- the allowlist: each route with its own access rule -------------------------------------


def agents_api(app: Flask, rule: Rule) -> None:
    """The agents API: `Authorization: Bearer <queues.api_token>`, else 403 (404 when no
    token is configured at all: the API is off)."""
    client, path = app.test_client(), _path(app, rule)
    for method in _methods(rule):
        body = {"queue": "front-desk", "agent": "ada"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "},
                        {"Authorization": f"Bearer {AGENTS_TOKEN[:-1]}"},
                        {"X-Twilio-Signature": sign(PUBLIC_URL + path, body)}):
            resp = client.open(path, method=method, data=body, headers=headers,
                               query_string={"queue": "front-desk"})
            assert resp.status_code == 403, (rule.rule, method, headers, resp.status_code)
        ok = client.open(path, method=method, data=body, query_string={"queue": "front-desk"},
                         headers={"Authorization": f"Bearer {AGENTS_TOKEN}"})
        assert ok.status_code == 200, (rule.rule, method, ok.get_data()[:200])


def open_probe(app: Flask, rule: Rule) -> None:
    """/healthz and /readyz: open to anyone (load balancers, orchestrators), from anywhere,
    and they reveal no call data."""
    resp = app.test_client().get(_path(app, rule), environ_base={"REMOTE_ADDR": OUTSIDE})
    assert resp.status_code in (200, 503), (rule.rule, resp.status_code)
    assert b"+1" not in resp.get_data() and b"CA" not in resp.get_data()


def metrics_scrape(app: Flask, rule: Rule) -> None:
    """/metrics: open on loopback (not through a proxy); from elsewhere, or with a [metrics]
    token set, only with `Authorization: Bearer <token>`."""
    client, path = app.test_client(), _path(app, rule)
    assert client.get(path).status_code == 200  # the test client is 127.0.0.1
    assert client.get(path, environ_base={"REMOTE_ADDR": OUTSIDE}).status_code == 403
    assert client.get(path, headers={"X-Forwarded-For": OUTSIDE}).status_code == 403
    tokened = create_app(app.extensions["ivr"].config.with_section("metrics",
                                                                   token=METRICS_TOKEN),
                         clock=app.extensions["ivr"].clock).test_client()
    assert tokened.get(path).status_code == 401  # a token set: loopback needs it too
    assert tokened.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert tokened.get(path, environ_base={"REMOTE_ADDR": OUTSIDE}, headers={
        "Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200


ALLOWLIST: dict[str, Callable[[Flask, Rule], None]] = {
    "/agents": agents_api,
    "/agents/sign-in": agents_api,
    "/agents/sign-out": agents_api,
    "/agents/connected": agents_api,
    "/healthz": open_probe,
    "/readyz": open_probe,
    "/metrics": metrics_scrape,
}


# -- Twilio's routes: the signature or nothing ----------------------------------------------


def _refused_unsigned(app: Flask, rule: Rule) -> bool:
    client, path = app.test_client(), _path(app, rule)
    params = call_params()
    for method in _methods(rule):
        for headers in ({}, {"X-Twilio-Signature": sign(PUBLIC_URL + path, params,
                                                         "not-the-account-token")}):
            resp = client.open(path, method=method, data=params, base_url=PUBLIC_URL,
                               headers=headers)
            if resp.status_code != 403:
                return False
    return True


def _accepts_signed(app: Flask, rule: Rule) -> None:
    """The 403 is about the signature: the same request, signed, is served."""
    client, path = app.test_client(), _path(app, rule)
    params = call_params()
    for method in _methods(rule):
        resp = client.open(path, method=method, data=params, base_url=PUBLIC_URL,
                           headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, params)})
        assert resp.status_code not in (401, 403) and resp.status_code < 500, \
            (rule.rule, method, resp.status_code)


def _handshake(transport: InProcessTransport, path: str, signature: str | None) -> Any:
    url = PUBLIC_URL.replace("https://", "wss://") + path
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    return Client.connect(transport.websocket_url(url), headers=headers)


def _websocket_refused_unsigned(transport: InProcessTransport, path: str) -> None:
    url = PUBLIC_URL.replace("https://", "wss://") + path
    for signature in (None, sign(url, {}, "not-the-account-token")):
        with pytest.raises(HandshakeRefused) as refused:
            _handshake(transport, path, signature)
        assert refused.value.status_code == 403, path
    _handshake(transport, path, sign(url, {})).close()  # signed: the handshake goes through


def test_every_route_is_twilio_signed_or_allowlisted_with_its_own_rule(full_app, transport):
    rules = [r for r in full_app.url_map.iter_rules() if not r.rule.startswith(SKIPPED)]
    present = {r.rule for r in rules}
    assert {"/voice/incoming", "/voice/stream", "/sms/incoming", "/agents"} <= present
    checked_signed = checked_allowed = 0
    for rule in rules:
        if rule.rule in ALLOWLIST:
            ALLOWLIST[rule.rule](full_app, rule)
            checked_allowed += 1
        elif getattr(rule, "websocket", False):
            _websocket_refused_unsigned(transport, _path(full_app, rule))
            checked_signed += 1
        else:
            if not _refused_unsigned(full_app, rule):
                pytest.fail(WHAT_TO_DO.format(rule=rule.rule, endpoint=rule.endpoint))
            _accepts_signed(full_app, rule)
            checked_signed += 1
    stale = sorted(set(ALLOWLIST) - present)
    assert not stale, f"no such routes any more, take them off ALLOWLIST: {stale}"
    assert checked_signed >= 14 and checked_allowed == len(ALLOWLIST)


def test_a_new_unsigned_route_fails_the_check_with_what_to_do(full_app):
    @full_app.post("/hooks/new-provider")
    def new_provider() -> str:
        return "ok"

    rule = next(r for r in full_app.url_map.iter_rules() if r.rule == "/hooks/new-provider")
    assert rule.rule not in ALLOWLIST
    assert not _refused_unsigned(full_app, rule)
    assert "add it to ALLOWLIST" in WHAT_TO_DO.format(rule=rule.rule, endpoint=rule.endpoint)


def test_the_agents_api_is_off_without_a_token(app):
    client = app.test_client()
    for method, path in (("GET", "/agents"), ("POST", "/agents/sign-in"),
                         ("POST", "/agents/sign-out"), ("GET", "/agents/connected")):
        resp = client.open(path, method=method, headers={"Authorization": "Bearer "})
        assert resp.status_code == 404, (path, resp.status_code)
