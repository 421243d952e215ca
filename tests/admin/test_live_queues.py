"""Live queues: callers put in a queue (by the caller simulator, or straight into the live
state), then what /admin/queues and /admin/queues.json say about each queue."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from ivr_server import create_app
from ivr_server.clock import FixedClock
from ivr_server.simulator import SimulatedCall
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.test_queue_calls import QUEUE_FLOW, seed_history

from .conftest import PASSWORD, login

CALLERS = "+15005550500"


def queue_json(client: Any) -> dict[str, Any]:
    response = client.get("/admin/queues.json")
    assert response.status_code == 200, response.text
    return response.get_json()


def row(state: dict[str, Any], name: str) -> dict[str, Any]:
    found = [q for q in state["queues"] if q["name"] == name]
    assert found, f"queue {name} not listed: {[q['name'] for q in state['queues']]}"
    return found[0]


def cells(html: str, queue: str) -> dict[str, str]:
    match = re.search(rf'<tr data-queue="{re.escape(queue)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {queue}"
    return {f: v.strip() for f, v in
            re.findall(r'data-field="(\w+)"[^>]*>(.*?)</td>', match.group(1), re.S)}


@pytest.fixture
def queue_app(config: Any, clock: FixedClock, flows_dir: Path) -> Any:
    (flows_dir / "queued.yaml").write_text(QUEUE_FLOW)
    cfg = config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                              numbers={CALLERS: "queued"}, settings=config.flows.settings)
    app = create_app(cfg, clock=clock)
    yield app
    app.extensions["ivr"].redis.close()


def supervisor(app: Flask) -> Any:
    name = f"sup-{uuid.uuid4().hex[:8]}"
    app.extensions["ivr_admin"].users.create(name, PASSWORD, "supervisor")
    client = app.test_client()
    assert login(client, name, PASSWORD).status_code == 302
    return client


def test_a_simulated_caller_waiting_shows_in_the_queue_with_an_estimate(
        queue_app: Flask, clock: FixedClock) -> None:
    services = queue_app.extensions["ivr"]
    services.queues.set_agents("support", 1, clock().timestamp() - 3600)
    seed_history(services.queues)  # answered callers, so the predictor has a history
    caller = SimulatedCall(InProcessTransport(queue_app, PUBLIC_URL), AUTH_TOKEN, to=CALLERS,
                           from_="+14155550100", queues=SimulatedQueues())
    caller.dial()
    caller.press("1")
    assert caller.waiting_for == "queue"
    joined = services.queues.waiting("support")[0][1]
    clock.advance(95)
    client = supervisor(queue_app)
    support = row(queue_json(client), "support")
    assert support["waiting"] == 1
    assert support["longest_seconds"] == pytest.approx(clock().timestamp() - joined)
    assert support["longest_seconds"] >= 95
    assert support["agents"] == 1
    assert support["estimate"] is not None and support["estimate"]["seconds"] > 0
    assert support["estimate_text"] != "no estimate yet"
    shown = cells(client.get("/admin/queues").text, "support")
    assert shown["waiting"] == "1"
    assert shown["longest"] == support["longest"]
    assert shown["agents"] == "1"
    assert shown["estimate"] == support["estimate_text"]


def test_waiting_callers_and_the_longest_wait_come_from_the_live_state(
        app: Flask, clock: FixedClock, signed_in: Any) -> None:
    queues = app.extensions["ivr"].queues
    now = clock().timestamp()
    queues.arrive("night-desk", "CAfirst", now - 185)
    queues.arrive("night-desk", "CAsecond", now - 20)
    queues.arrive("night-desk", "CAthird", now - 50)
    queues.answer("night-desk", "CAthird", now - 5)  # with an agent: not waiting
    night = row(queue_json(signed_in("supervisor")), "night-desk")
    assert (night["waiting"], night["longest_seconds"], night["longest"]) == (2, 185, "3m 05s")
    assert night["in_service"] == 1
    assert night["agents"] is None and night["estimate_text"] == "no estimate yet"


def test_configured_and_flow_queues_are_listed_even_when_empty(
        app: Flask, signed_in: Any) -> None:
    state = queue_json(signed_in("supervisor"))
    desk = row(state, "front-desk")  # in [queues.agents] and in the demo flow
    assert (desk["waiting"], desk["longest"], desk["agents"]) == (0, "—", 2)
    # two agents on duty, nobody waiting or being served: a new caller waits no time
    assert desk["estimate"]["seconds"] == 0 and desk["estimate_text"] == "0s"
    assert state["queues"][0]["name"] == "front-desk"  # configured ones first


def test_a_queue_known_only_to_redis_is_listed_with_its_agents(
        app: Flask, clock: FixedClock, signed_in: Any) -> None:
    queues = app.extensions["ivr"].queues
    queues.sign_in("overflow", "alice", clock().timestamp())
    queues.sign_in("overflow", "bob", clock().timestamp())
    overflow = row(queue_json(signed_in("supervisor")), "overflow")
    assert overflow["agents"] == 2 and overflow["on_duty"] == ["alice", "bob"]


def test_nobody_on_duty_means_no_estimate_yet(app: Flask, clock: FixedClock,
                                              signed_in: Any) -> None:
    queues = app.extensions["ivr"].queues
    seed_history(queues, "empty-desk")
    queues.set_agents("empty-desk", 0, clock().timestamp())
    client = signed_in("supervisor")
    assert row(queue_json(client), "empty-desk")["estimate_text"] == "no estimate yet"
    assert cells(client.get("/admin/queues").text, "empty-desk")["estimate"] == \
        "no estimate yet"


def test_callers_whose_end_was_never_reported_are_left_out(
        app: Flask, clock: FixedClock, signed_in: Any) -> None:
    queues = app.extensions["ivr"].queues
    now = clock().timestamp()
    queues.arrive("lost-desk", "CAlost", now - queues.stale_after - 60)
    queues.arrive("lost-desk", "CAreal", now - 30)
    lost = row(queue_json(signed_in("supervisor")), "lost-desk")
    assert (lost["waiting"], lost["longest_seconds"]) == (1, 30)
    assert len(queues.waiting("lost-desk")) == 2  # looking changed nothing


def test_the_page_has_the_table_the_refresh_script_updates(app: Flask,
                                                           signed_in: Any) -> None:
    html = signed_in("supervisor").get("/admin/queues").text
    assert '<table id="queues">' in html and 'id="updated-at"' in html
    assert "updated 15:00:00" in html  # the clock, in the admin zone (UTC here)
    assert "/admin/static/queues.js" in html
    config = re.search(r'id="queues-config">(.*?)</script>', html, re.S).group(1)
    assert '"url": "/admin/queues.json"' in config and '"every": 5000' in config
    assert set(cells(html, "front-desk")) == {"waiting", "longest", "agents", "estimate"}


def test_queues_json_needs_a_signed_in_user(app: Flask) -> None:
    response = app.test_client().get("/admin/queues.json",
                                     headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_queues_json_says_when_redis_cannot_be_read(
        app: Flask, signed_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = signed_in("supervisor")  # signs in through Redis (the throttle) first

    def down(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(app.extensions["ivr"].redis, "scan_iter", down)
    response = client.get("/admin/queues.json")
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("live state unavailable")
    assert "not updating: live state unavailable" in client.get("/admin/queues").text


def test_one_unreadable_queue_does_not_hide_the_others(
        app: Flask, signed_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = signed_in("supervisor")
    queues = app.extensions["ivr"].queues
    queues.sign_in("broken-desk", "carol", 0)
    real = queues.waiting

    def waiting(queue: str) -> Any:
        if queue == "broken-desk":
            raise redis.ConnectionError("Connection reset")
        return real(queue)

    monkeypatch.setattr(queues, "waiting", waiting)
    state = queue_json(client)
    assert row(state, "broken-desk")["error"] == "unavailable (ConnectionError)"
    assert row(state, "front-desk")["error"] is None
