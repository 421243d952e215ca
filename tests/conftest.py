"""Fixtures: real Redis and SQL (REDIS_URL / DATABASE_URL when set, else embedded), a fixed
clock in the demo flow's office hours, a real HTTP CRM stub, and the caller simulator."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr_server import create_app, db
from ivr_server.clock import FixedClock
from ivr_server.config import Config, load_config
from ivr_server.redis_conn import connect
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport

from .crm_stub import CrmStub, running_crm

pytest_plugins = ["tests.prism"]

ROOT = Path(__file__).resolve().parent.parent
DEMO_FLOWS = ROOT / "flows" / "examples"
PUBLIC_URL = "https://ivr.example.test"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
# Tuesday 24 November 2026, 10:00 in New York: the demo company is open.
OPEN_HOURS = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    from ivr_server.redis_conn import EmbeddedRedis

    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield embedded.url
    embedded.shutdown()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("DATABASE_URL") or \
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'ivr.sqlite3'}"
    db.upgrade(url)
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix per test, so tests share a Redis server without seeing each other."""
    prefix = f"ivrtest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = connect(redis_url)
    keys = list(client.scan_iter(f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the demo flows that a test may edit without touching the repository."""
    target = tmp_path / "flows"
    shutil.copytree(DEMO_FLOWS, target)
    return target


@pytest.fixture
def crm() -> Iterator[tuple[CrmStub, str]]:
    with running_crm() as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, redis_url: str, redis_prefix: str, database_url: str,
           flows_dir: Path, crm: tuple[CrmStub, str]) -> Config:
    base = load_config(ROOT / "config.toml", env={})
    return (base
            .with_section("server", public_base_url=PUBLIC_URL,
                          instance_path=str(tmp_path / "instance"))
            .with_section("twilio", auth_token=AUTH_TOKEN)
            .with_section("redis", url=redis_url, key_prefix=redis_prefix)
            .with_section("database", url=database_url)
            .with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                          settings={"crm_url": crm[1]}))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(OPEN_HOURS)


@pytest.fixture
def app(config: Config, clock: FixedClock):  # noqa: ANN201 - Flask
    app = create_app(config, clock=clock)
    yield app
    app.extensions["ivr"].redis.close()


@pytest.fixture
def crm_stub(crm: tuple[CrmStub, str]) -> CrmStub:
    return crm[0]


@pytest.fixture
def place_call(app):  # noqa: ANN001, ANN201
    """Start a simulated call: place_call(from_="+1...") -> SimulatedCall, already dialled."""

    def _place(from_: str = "+14155550100", to: str = "+15005550006", *,
               dial: bool = True, **kw) -> SimulatedCall:  # noqa: ANN003
        call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, from_=from_,
                             to=to, **kw)
        if dial:
            call.dial()
        return call

    return _place


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator(token).compute_signature(url, params)


@pytest.fixture
def post(app):  # noqa: ANN001, ANN201
    """post(path, params, signed=True) -> Response: a raw webhook, signed as Twilio signs."""
    client = app.test_client()

    def _post(path: str, params: dict[str, str], *, signed: bool = True,
              token: str = AUTH_TOKEN, headers: dict[str, str] | None = None):  # noqa: ANN202
        all_headers = dict(headers or {})
        if signed:
            all_headers["X-Twilio-Signature"] = sign(PUBLIC_URL + path, params, token)
        return client.post(path, data=params, headers=all_headers, base_url=PUBLIC_URL)

    return _post


def call_params(call_sid: str = "CA" + "0" * 32, **extra: str) -> dict[str, str]:
    """The parameters Twilio sends with every voice webhook."""
    return {"CallSid": call_sid, "AccountSid": "AC" + "1" * 32, "From": "+14155550100",
            "To": "+15005550006", "CallStatus": "in-progress", "Direction": "inbound",
            "ApiVersion": "2010-04-01", **extra}
