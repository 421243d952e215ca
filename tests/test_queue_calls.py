"""Whole calls through a queue: callers hear their place and an estimate, an agent's line
takes the caller who waited longest, and the call log keeps predicted and actual waits."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr_server import create_app
from ivr_server.simulator import DialOutcome, SimulatedCall, new_sid
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport

from .conftest import AUTH_TOKEN, OPEN_HOURS, PUBLIC_URL, call_params
from .flows.test_engine_queues import QUEUE_FLOW as ENGINE_QUEUE_FLOW
from .helpers import call_events

CALLERS, AGENTS = "+15005550500", "+15005550501"
QUEUE_FLOW = ENGINE_QUEUE_FLOW.replace("flow: t\n", "flow: queued\n")  # the engine tests' flow
AGENT_FLOW = """\
flow: agents
start: line
nodes:
  line:
    type: agent_line
    queue: support
    say: Taking the next caller.
    timeout: 30
    next: done
    fallback: nobody
  done: {type: hangup, say: Call finished.}
  nobody: {type: hangup, say: Nobody is waiting.}
"""


class CallerClock:
    """The server's clock moves with the first caller's simulated time."""

    def __init__(self) -> None:
        self.call: SimulatedCall | None = None

    def __call__(self) -> dt.datetime:
        return OPEN_HOURS + dt.timedelta(seconds=self.call.elapsed if self.call else 0)


def seed_history(state, queue: str = "support") -> None:  # noqa: ANN001
    """An hour of answered callers: each answered after about 4 minutes."""
    start = OPEN_HOURS.timestamp() - 3000
    for i in range(12):
        sid = f"CAhist{i:02d}"
        state.arrive(queue, sid, start + i * 200)
        state.answer(queue, sid, start + i * 200 + 240)
        state.hangup(queue, sid, start + i * 200 + 400)


@pytest.fixture
def clock() -> CallerClock:
    return CallerClock()


@pytest.fixture
def queue_app(config, clock, flows_dir):  # noqa: ANN001, ANN201
    (flows_dir / "queued.yaml").write_text(QUEUE_FLOW)
    (flows_dir / "agents.yaml").write_text(AGENT_FLOW)
    cfg = config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                              numbers={CALLERS: "queued", AGENTS: "agents"},
                              settings=config.flows.settings)
    app = create_app(cfg, clock=clock)
    services = app.extensions["ivr"]
    services.queues.set_agents("support", 1, OPEN_HOURS.timestamp() - 3600)
    return app


@pytest.fixture
def queues() -> SimulatedQueues:
    return SimulatedQueues()


def _call(app, queues: SimulatedQueues, to: str, from_: str = "+14155550100") -> SimulatedCall:  # noqa: ANN001
    return SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to=to, from_=from_,
                         queues=queues)


def _queued_caller(app, queues, clock, from_: str = "+14155550100") -> SimulatedCall:  # noqa: ANN001
    caller = _call(app, queues, CALLERS, from_)
    if clock.call is None:
        clock.call = caller
    caller.dial()
    caller.press("1")
    assert caller.waiting_for == "queue"
    return caller


def test_a_caller_hears_their_place_then_an_agent_takes_them(queue_app, queues, clock):
    caller = _queued_caller(queue_app, queues, clock)
    caller.expect_heard("Please hold for the next agent.")
    caller.expect_heard("You are number 1 in line.")
    caller.wait(120)
    agent = _call(queue_app, queues, AGENTS, "+14155550199")
    agent.dial()
    agent.expect_heard("Taking the next caller.")
    agent.expect_heard("Next caller from 1 4 1 5 5 5 5 0 1 0 0. choices: support.")
    agent.answer_dial(DialOutcome.answered(90))
    agent.expect_heard("Call finished.")
    caller.expect_heard("Thanks for your call.")
    assert caller.ended and caller.status == "completed"
    kinds = {e.kind: e.data for e in call_events(queue_app, caller.call_sid)}
    assert kinds["queue_joined"]["queue"] == "support"
    assert kinds["queue_answered"]["agent_call"] == agent.call_sid
    assert kinds["queue_result"]["result"] == "bridged"
    assert kinds["queue_result"]["waited"] >= 120
    state = queue_app.extensions["ivr"].queues
    assert state.waiting("support") == [] and state.in_service("support") == {}


def test_callers_are_taken_in_the_order_they_joined(queue_app, queues, clock):
    first = _queued_caller(queue_app, queues, clock, "+14155550101")
    second = _queued_caller(queue_app, queues, clock, "+14155550102")
    second.expect_heard("You are number 2 in line.")
    agent = _call(queue_app, queues, AGENTS, "+14155550199")
    agent.dial()
    assert agent.bridged_caller is first
    agent.answer_dial(DialOutcome.answered(30))
    second.wait(90)  # the next announcement is due after `every` (60 s): news, new place
    second.expect_heard("You are number 1 in line.")


def test_the_estimate_comes_from_the_queues_history(queue_app, queues, clock):
    seed_history(queue_app.extensions["ivr"].queues)
    caller = _queued_caller(queue_app, queues, clock)
    line = next(h for h in caller.heard if h.startswith("You are number 1 in line."))
    assert "Your wait is" in line and "minute" in line, line
    joined = next(e for e in call_events(queue_app, caller.call_sid) if e.kind == "queue_joined")
    predicted = joined.data["predicted"]
    assert predicted["p10"] <= predicted["wait"] <= predicted["p90"]


def test_a_caller_who_hangs_up_on_hold_is_counted_as_abandoned(queue_app, queues, clock):
    caller = _queued_caller(queue_app, queues, clock)
    caller.wait(45)
    caller.hangup()
    state = queue_app.extensions["ivr"].queues
    assert state.waiting("support") == []
    assert [e.event for e in state.events("support")][-2:] == ["arrive", "abandon"]
    events = call_events(queue_app, caller.call_sid)
    result = next(e for e in events if e.kind == "queue_result")
    assert result.data["result"] == "hangup"


def test_waiting_too_long_takes_the_fallback(queue_app, queues, clock):
    caller = _queued_caller(queue_app, queues, clock)
    caller.wait(1000)
    caller.expect_heard("Sorry, everyone is busy. Please call back later.")
    assert caller.ended


def test_an_agent_with_nobody_waiting_hears_so(queue_app, queues, clock):
    agent = _call(queue_app, queues, AGENTS, "+14155550199")
    agent.dial()
    agent.answer_dial()
    agent.expect_heard("Nobody is waiting.")


def test_with_two_agents_on_duty_no_agent_line_is_told_a_guess(queue_app, queues, clock):
    queue_app.extensions["ivr"].queues.set_agents("support", 2, OPEN_HOURS.timestamp())
    first = _queued_caller(queue_app, queues, clock, "+14155550101")
    _queued_caller(queue_app, queues, clock, "+14155550102")
    agent_a = _call(queue_app, queues, AGENTS, "+14155550198")
    agent_a.dial()
    agent_b = _call(queue_app, queues, AGENTS, "+14155550199")
    agent_b.dial()
    for agent in (agent_a, agent_b):  # either could dequeue first: who they get is unknown
        assert not any(h.startswith("Next caller") for h in agent.heard), agent.heard
    assert agent_a.bridged_caller is first


def test_a_lone_agent_connected_to_another_caller_than_briefed_is_noted(queue_app, queues,
                                                                        clock, post):
    caller = _queued_caller(queue_app, queues, clock, "+14155550101")
    state = queue_app.extensions["ivr"].queues
    agent, other = new_sid("CA"), new_sid("CA")  # unique: the database outlives the test
    assert state.brief("support", agent, OPEN_HOURS.timestamp()) == caller.call_sid
    state.arrive("support", other, OPEN_HOURS.timestamp())
    resp = post("/voice/queue/connect?queue=support",
                call_params(other, DequeingCallSid=agent, QueueTime="30"))
    assert resp.status_code == 200
    noted = [e for e in call_events(queue_app, other) if e.kind == "brief_mismatch"]
    assert noted and noted[0].data["briefed_about"] == caller.call_sid
