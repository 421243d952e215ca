"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium, headless) against
the real server on loopback, with real Redis and SQL. Screenshots of each page go to
test-artifacts/browser/ (not committed) for a person to look at."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from ivr_server import create_app
from ivr_server.config import load_config
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import HttpTransport

from ..conftest import AUTH_TOKEN, DEMO_FLOWS, OPEN_HOURS, ROOT
from ..crm_stub import running_crm

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.browser


class CallClock:
    """The server's clock: the demo company's open hours plus the latest simulated call's own
    time, so waits on hold really pass and a timeline shows when each step happened."""

    def __init__(self, base: dt.datetime) -> None:
        self.base, self.call = base, None

    def __call__(self) -> dt.datetime:
        elapsed = self.call.elapsed if self.call is not None else 0.0
        return self.base + dt.timedelta(seconds=elapsed)


@dataclass
class LiveServer:
    """The app served over HTTP on 127.0.0.1, as a browser and the caller simulator see it."""

    app: Any
    url: str
    clock: CallClock
    flows_dir: Path
    queues: SimulatedQueues = field(default_factory=SimulatedQueues)  # Twilio's <Queue>s

    def user(self, role: str) -> str:
        """A new user with this role (unique name: the PostgreSQL test DB outlives runs)."""
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        self.app.extensions["ivr_admin"].users.create(name, PASSWORD, role)
        return name

    def call(self, from_: str, to: str = "+15005550006", **kw: Any) -> SimulatedCall:
        """A simulated phone call to this server over HTTP, signed as Twilio signs."""
        call = SimulatedCall(HttpTransport(self.url), AUTH_TOKEN, from_=from_, to=to,
                             queues=self.queues, **kw)
        self.clock.base, self.clock.call = self.clock(), call  # time runs on, never back
        call.dial()
        return call

    def flush_call_log(self) -> None:
        """Write the queued call log now, as the background writer would a moment later."""
        self.app.extensions["ivr"].writer.drain()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, redis_url: str,
                database_url: str) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    flows = tmp / "flows"
    shutil.copytree(DEMO_FLOWS, flows)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    prefix = f"ivrtest:{uuid.uuid4().hex[:10]}:"
    clock = CallClock(OPEN_HOURS)
    with running_crm() as (_, crm_url):
        config = (load_config(ROOT / "config.toml", env={})
                  .with_section("server", public_base_url=url, instance_path=str(tmp / "inst"))
                  .with_section("twilio", auth_token=AUTH_TOKEN)
                  .with_section("redis", url=redis_url, key_prefix=prefix)
                  .with_section("database", url=database_url)
                  .with_section("flows", directory=str(flows), reload_interval=0.0,
                                settings={"crm_url": crm_url}))
        app = create_app(config, clock=clock)
        services = app.extensions["ivr"]
        services.start_background()
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield LiveServer(app, url, clock, flows)
        finally:
            server.shutdown()
            services.close()
            keys = list(services.redis.scan_iter(f"{prefix}*", count=500))
            if keys:
                services.redis.delete(*keys)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's chromium (apt-get install chromium "
                    "chromium-driver); `./dev test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Page:
    """A browser tab plus what the page complained about in its console."""

    page: Any
    base: str
    name: str
    problems: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.go("/admin/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()


@pytest.fixture
def page(browser: Any, live_server: LiveServer,
         request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Page(context.new_page(), live_server.url, request.node.name)
    tab.page.on("console", lambda m: tab.problems.append(m.text) if m.type == "error" else None)
    tab.page.on("pageerror", lambda e: tab.problems.append(str(e)))
    tab.page.on("dialog", lambda d: d.accept())
    tab.page.on("request", lambda r: tab.requested.append(r.url))
    yield tab
    context.close()
    # A script the CSP blocked, or one that threw, is a broken page even if it looks fine.
    assert not tab.problems, tab.problems
    # Everything, Chart.js and Mermaid included, comes from this server: never a CDN.
    elsewhere = [u for u in tab.requested
                 if not u.startswith((live_server.url + "/", "data:"))]
    assert not elsewhere, elsewhere


@pytest.fixture
def signed_in_page(page: Page, live_server: LiveServer) -> Callable[[str], Page]:
    def _as(role: str) -> Page:
        page.sign_in(live_server.user(role))
        return page

    return _as
