"""What an agent learns about the caller they take: a spoken brief only when no other line
can race theirs for the queue, and always an exact screen pop of the caller Twilio
connected them to, gone once that call ends."""

from __future__ import annotations

import pytest

from ivr_server import create_app
from ivr_server.simulator import DialOutcome, new_sid
from ivr_server.simulator.queues import SimulatedQueues

from .conftest import OPEN_HOURS, call_params
from .helpers import call_events
from .test_queue_calls import AGENT_FLOW, AGENTS, CALLERS, QUEUE_FLOW, _call, clock

__all__ = ["clock"]  # the queue tests' clock fixture, which follows the caller

TOKEN = "screen-pop-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def desk(config, clock, flows_dir):  # noqa: ANN001, ANN201
    """The queue and agent-line flows, with the agents API on; nobody on duty yet."""
    (flows_dir / "queued.yaml").write_text(QUEUE_FLOW)
    (flows_dir / "agents.yaml").write_text(AGENT_FLOW)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={CALLERS: "queued", AGENTS: "agents"},
                               settings=config.flows.settings)
           .with_section("queues", api_token=TOKEN))
    app = create_app(cfg, clock=clock)
    yield app
    app.extensions["ivr"].redis.close()


@pytest.fixture
def queues() -> SimulatedQueues:
    return SimulatedQueues()


def _on_duty(app, *agents: str) -> None:  # noqa: ANN001
    client = app.test_client()
    for agent in agents:
        resp = client.post("/agents/sign-in", json={"queue": "support", "agent": agent},
                           headers=AUTH)
        assert resp.status_code == 200


def _waiting(app, queues, clock, from_: str):  # noqa: ANN001, ANN202
    caller = _call(app, queues, CALLERS, from_)
    clock.call = clock.call or caller
    caller.dial()
    caller.press("1")
    assert caller.waiting_for == "queue"
    return caller


def _screen(app, **query: str) -> list[dict]:  # noqa: ANN001
    resp = app.test_client().get("/agents/connected", query_string={"queue": "support",
                                                                     **query}, headers=AUTH)
    assert resp.status_code == 200, resp.get_data()
    return resp.json["connected"]


def test_a_lone_agent_hears_who_is_next_and_gets_that_caller(desk, queues, clock):
    _on_duty(desk, "ada")
    caller = _waiting(desk, queues, clock, "+14155550711")
    agent = _call(desk, queues, AGENTS, "+14155550791")
    agent.dial()
    agent.expect_heard("Next caller from 1 4 1 5 5 5 5 0 7 1 1. choices: support.")
    assert agent.bridged_caller is caller
    [pop] = _screen(desk)
    assert (pop["agent_call"], pop["caller_call"], pop["caller"], pop["context"]) == (
        agent.call_sid, caller.call_sid, "+14155550711", {"choices": "support"})
    assert pop["since"].startswith(OPEN_HOURS.date().isoformat())


def test_with_two_agents_on_duty_nobody_is_told_a_guess_but_each_screen_names_their_caller(
        desk, queues, clock):
    _on_duty(desk, "ada", "grace")
    first = _waiting(desk, queues, clock, "+14155550721")
    second = _waiting(desk, queues, clock, "+14155550722")
    agent_a = _call(desk, queues, AGENTS, "+14155550792")
    agent_a.dial()
    agent_b = _call(desk, queues, AGENTS, "+14155550793")
    agent_b.dial()
    for agent in (agent_a, agent_b):
        assert agent.heard == ["Taking the next caller."], agent.heard  # no prediction
    got = {agent_a.call_sid: agent_a.bridged_caller, agent_b.call_sid: agent_b.bridged_caller}
    assert {c.call_sid for c in got.values()} == {first.call_sid, second.call_sid}
    screen = {p["agent_call"]: p for p in _screen(desk)}
    assert {a: (p["caller_call"], p["caller"]) for a, p in screen.items()} == {
        a: (c.call_sid, c.from_) for a, c in got.items()}
    [mine] = _screen(desk, agent_call=agent_b.call_sid)
    assert mine["caller_call"] == got[agent_b.call_sid].call_sid
    assert mine["context"] == {"choices": "support"}
    for caller in (first, second):
        assert "brief_mismatch" not in {e.kind for e in call_events(desk, caller.call_sid)}


def test_the_screen_pop_goes_when_the_agent_ends_the_call(desk, queues, clock):
    _on_duty(desk, "ada")
    caller = _waiting(desk, queues, clock, "+14155550731")
    agent = _call(desk, queues, AGENTS, "+14155550794")
    agent.dial()
    assert [p["caller_call"] for p in _screen(desk)] == [caller.call_sid]
    agent.answer_dial(DialOutcome.answered(45))
    caller.expect_heard("Thanks for your call.")
    assert _screen(desk) == [] and _screen(desk, agent_call=agent.call_sid) == []


def test_the_screen_pop_goes_when_only_the_callers_status_callback_comes(desk, queues, clock,
                                                                       post):
    caller = _waiting(desk, queues, clock, "+14155550741")
    agent = new_sid("CA")
    resp = post("/voice/queue/connect?queue=support",
                call_params(caller.call_sid, DequeingCallSid=agent, QueueTime="20"))
    assert resp.status_code == 200
    assert [(p["agent_call"], p["waited"]) for p in _screen(desk)] == [(agent, 20)]
    post("/voice/status", call_params(caller.call_sid, CallStatus="completed",
                                      CallDuration="80"))
    assert _screen(desk) == []


def test_a_second_line_gets_no_brief_while_another_line_holds_one(desk):
    state, now = desk.extensions["ivr"].queues, OPEN_HOURS.timestamp()
    state.set_agents("support", 1, now)
    state.arrive("support", "CAhead", now - 30)
    assert state.brief("support", "CAline1", now) == "CAhead"
    assert state.brief("support", "CAline2", now + 10) is None, "line 1 could dequeue first"
    assert state.brief("support", "CAline2", now + 61) == "CAhead", "line 1's hold is over"
    assert state.briefed("support", "CAline1") is None, "dropped once it expired"
    state.set_agents("support", 2, now + 62)
    assert state.brief("support", "CAline2", now + 62) is None
    assert state.briefed("support", "CAline2") is None, "a line re-dialling drops its own"


def test_the_screen_api_checks_its_query(desk):
    client = desk.test_client()
    assert client.get("/agents/connected", headers=AUTH).status_code == 400
    assert client.get("/agents/connected?queue=support&agent_call=x\n",
                      headers=AUTH).status_code == 400
    assert client.get("/agents/connected?queue=support").status_code == 403
