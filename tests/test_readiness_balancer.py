"""The load balancer's probe, `/readyz?exclude=redis&exclude=database`: a Redis or database
outage is shared by every node, and callers get through it on the safe path, so it must
not take every node out of rotation at once (Twilio would then reach no node at all); a
node without live flows still leaves the rotation."""

from __future__ import annotations

from pathlib import Path

from ivr_server.redis_conn import connect
from ivr_server.simulator import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .test_observability import closed_port, hung_server, other_app

__all__ = ["hung_server"]  # the fixture, used by name

BALANCER_PROBE = "/readyz?exclude=redis&exclude=database"


def test_with_redis_down_the_balancers_probe_keeps_the_node_in_and_callers_reach_a_person(
        config, clock):
    app = other_app(config, clock, redis={"url": f"redis://127.0.0.1:{closed_port()}/0"})
    client = app.test_client()

    assert client.get("/readyz").status_code == 503  # what an operator's alert looks at
    probe = client.get(BALANCER_PROBE)
    assert probe.status_code == 200, probe.text
    assert probe.get_json()["excluded"] == ["database", "redis"]
    assert set(probe.get_json()["checks"]) == {"flows"}

    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN)
    call.dial()  # which the balancer still sends here
    call.expect_heard("having trouble right now. Connecting you")
    assert call.transferred_to is not None


def test_with_the_database_down_the_balancers_probe_keeps_the_node_in(config, clock):
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    app = other_app(config, clock, database={"url": url})
    assert app.test_client().get("/readyz").status_code == 503
    assert app.test_client().get(BALANCER_PROBE).status_code == 200


def test_a_node_without_live_flows_leaves_the_balancers_rotation(config, clock,
                                                                 tmp_path: Path):
    empty = tmp_path / "no-flows"
    empty.mkdir()
    app = other_app(config, clock, flows={"directory": str(empty)})
    probe = app.test_client().get(BALANCER_PROBE)
    assert probe.status_code == 503
    assert probe.get_json()["failing"] == ["flows"]


def test_a_hung_redis_left_out_of_the_probe_is_not_asked_by_the_flows_check(
        config, clock, hung_server):
    app = other_app(config, clock, metrics={"readiness_timeout": 0.3},
                    flows={"reload_interval": 0.0})  # the flows look for news on every ask
    registry = app.extensions["ivr"].registry
    working, registry.redis = registry.redis, connect(f"redis://127.0.0.1:{hung_server}/0")
    try:
        probe = app.test_client().get(BALANCER_PROBE)
        assert probe.status_code == 200, probe.text
        assert probe.get_json()["checks"]["flows"]["ok"]
    finally:
        registry.redis.close()
        registry.redis = working


def test_a_misspelt_check_is_refused_rather_than_quietly_kept(app):
    response = app.test_client().get("/readyz?exclude=db")
    assert response.status_code == 400
    assert "no such check: db" in response.get_json()["error"]
    assert "database" in response.get_json()["checks"]
