"""Redis going away while callers are on hold: a short outage keeps them waiting in their
place (Twilio holds the queue); a long one does not leave them on hold for ever, they
leave the queue and are put through to a person. The Redis is a real redis-server the test
kills and starts again (test_faults_redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr_server import create_app
from ivr_server.clock import FixedClock
from ivr_server.simulator import SimulatedCall
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport
from ivr_server.simulator.twiml_reader import Leave, Pause, Redirect, parse_twiml

from .conftest import AUTH_TOKEN, OPEN_HOURS, PUBLIC_URL, call_params, sign
from .test_faults_redis import RestartableRedis
from .test_queue_calls import CALLERS, QUEUE_FLOW, CallerClock

FLOWS_HUMAN = "+15550000001"  # QUEUE_FLOW's `human`


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def on_hold(config, flows_dir, redis_server) -> SimulatedCall:  # noqa: ANN001
    (flows_dir / "queued.yaml").write_text(QUEUE_FLOW)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={CALLERS: "queued"}, settings=config.flows.settings)
           .with_section("redis", url=redis_server.url, key_prefix=config.redis.key_prefix))
    clock = CallerClock()
    app = create_app(cfg, clock=clock)
    app.extensions["ivr"].queues.set_agents("support", 1, clock().timestamp() - 3600)
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to=CALLERS,
                         from_="+14155550180", queues=SimulatedQueues())
    clock.call = call
    call.dial()
    call.press("1")
    assert call.waiting_for == "queue"
    call.wait(30)
    return call


def test_a_caller_on_hold_when_redis_dies_for_good_is_put_through_to_a_person(
        on_hold, redis_server):
    redis_server.kill()

    on_hold.wait(120)  # every wait turn from here on meets the outage

    on_hold.expect_heard("having trouble right now. Connecting you")
    assert on_hold.transferred_to is not None
    assert on_hold.transferred_to.target == FLOWS_HUMAN
    assert all(status == 200 for _, _, status in on_hold.requests)


def test_a_caller_on_hold_through_a_short_redis_outage_keeps_waiting_in_their_place(
        on_hold, redis_server):
    redis_server.kill()
    on_hold.wait(30)
    redis_server.start()  # back within the minute, with its data

    on_hold.wait(120)

    assert on_hold.waiting_for == "queue" and on_hold.transferred_to is None
    on_hold.taken_by_agent(30)
    assert not any("having trouble" in said for said in on_hold.heard)


@pytest.mark.parametrize("since, leaves", [
    ("", False), ("abc", False), ("9" * 40, False), ("-5", False), ("0", False),
    ("future", False), ("59", False), ("60", True), ("3600", True)])
def test_only_a_minute_of_failing_wait_turns_takes_a_caller_out_of_the_queue(
        config, since: str, leaves: bool):
    """`failing_since` is the time the failures began, or any garbage: garbage restarts the
    minute rather than taking a caller out of line (or failing the webhook)."""
    app = create_app(config.with_section("redis", url="redis://127.0.0.1:1/0"),
                     clock=FixedClock(OPEN_HOURS))
    now = int(OPEN_HOURS.timestamp())
    value = {"future": str(now + 600)}.get(since, since)
    if since.isdigit() and len(since) <= 4:
        value = str(now - int(since))  # failing for that many seconds
    url = f"/voice/queue/wait?node=hold&turn=2&failing_since={value}&failed_at={now - 15}"
    params = call_params(QueueTime="300", QueuePosition="2")
    response = app.test_client().post(url, data=params, base_url=PUBLIC_URL, headers={
        "X-Twilio-Signature": sign(PUBLIC_URL + url, params)})
    assert response.status_code == 200
    verbs = parse_twiml(response.get_data(as_text=True))
    if leaves:
        assert [type(v) for v in verbs] == [Leave]
    else:
        assert [type(v) for v in verbs] == [Pause, Redirect]
        assert "node=hold" in verbs[1].url and "turn=2" in verbs[1].url


def test_failures_far_apart_do_not_add_up_to_the_minute(config):
    """Turns that went well between two failures (Twilio asked the redirect URL again)
    start the minute afresh: an old failure does not take the caller out of line."""
    app = create_app(config.with_section("redis", url="redis://127.0.0.1:1/0"),
                     clock=FixedClock(OPEN_HOURS))
    now = int(OPEN_HOURS.timestamp())
    url = f"/voice/queue/wait?node=hold&turn=2&failing_since={now - 600}&failed_at={now - 540}"
    params = call_params(QueueTime="900", QueuePosition="2")
    response = app.test_client().post(url, data=params, base_url=PUBLIC_URL, headers={
        "X-Twilio-Signature": sign(PUBLIC_URL + url, params)})
    verbs = parse_twiml(response.get_data(as_text=True))
    assert [type(v) for v in verbs] == [Pause, Redirect]
    assert f"failing_since={now}" in verbs[1].url
