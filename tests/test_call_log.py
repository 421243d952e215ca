"""Supervisors can read every call afterwards: who, which flow version, what happened, outcome."""

from __future__ import annotations

import random
from collections import Counter

from ivr_server import create_app
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .helpers import call_events, call_row

VALID_ACCOUNT = "12345674"  # passes the Luhn check
SPLIT_FLOW = """\
flow: greeting-trial
human: "+15005550006"
start: trial
nodes:
  trial:
    type: split
    branches:
      - { name: classic, share: 80, goto: classic }
      - { name: friendly, share: 20, goto: friendly }
  classic:
    type: say
    text: Thank you for calling.
    next: agent
  friendly:
    type: say
    text: Hi there, great to hear from you!
    next: agent
  agent:
    type: transfer
    to: "+15005550006"
"""


def test_transferred_call_is_logged_with_its_story(place_call, app):
    call = place_call("+14155550100")
    call.press("1")
    call.press(VALID_ACCOUNT)
    call.expect_heard("Connecting you to billing")
    call.answer_dial()
    assert call.ended

    row = call_row(app, call.call_sid)
    flow = app.extensions["ivr"].registry.current("company")
    assert (row.from_number, row.to_number) == ("+14155550100", "+15005550006")
    assert (row.flow, row.flow_version) == ("company", flow.version)
    assert row.status == "completed" and row.outcome == "transferred"
    assert row.started_at.tzinfo is not None and row.ended_at >= row.started_at

    events = call_events(app, call.call_sid)
    kinds = [e.kind for e in events]
    assert kinds[0] == "call_started" and kinds[-1] == "status"
    assert {"prompt", "key", "collected", "route", "transfer", "transfer_ended"} <= set(kinds)
    key = next(e for e in events if e.kind == "key")
    assert key.node == "main_menu" and key.data == {"digits": "1", "choice": "billing"}
    collected = next(e for e in events if e.kind == "collected")
    assert collected.data["digits"] == "****5674"  # the log never holds whole account numbers
    transfer = next(e for e in events if e.kind == "transfer")
    assert set(transfer.data["context"]) >= {"account_number", "reason"}


def test_caller_who_hangs_up_in_the_menu_is_abandoned(place_call, app):
    call = place_call()
    call.hangup()
    assert call_row(app, call.call_sid).outcome == "abandoned"


def test_caller_who_hangs_up_while_the_agent_rings_is_abandoned_not_failed(place_call, app):
    call = place_call()
    call.press("3")
    call.hangup()
    assert call_row(app, call.call_sid).outcome == "abandoned"


def test_after_hours_call_is_closed_not_self_served(place_call, clock, app):
    clock.advance(12 * 3600)  # 22:00 in New York
    call = place_call()
    call.expect_heard("We're closed right now")
    assert call.ended
    assert call_row(app, call.call_sid).outcome == "closed"


def test_failed_transfer_is_logged_as_failed(place_call, app):
    from ivr_server.simulator.model import DialOutcome

    call = place_call()
    call.press("3")
    call.answer_dial(DialOutcome.busy())
    call.expect_heard("everyone is busy")
    assert call_row(app, call.call_sid).outcome == "failed"


def test_split_is_sticky_per_caller_and_the_branch_is_recorded(config, clock, flows_dir):
    (flows_dir / "trial.yaml").write_text(SPLIT_FLOW)
    cfg = config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                              numbers={"+15005550200": "greeting-trial"},
                              settings=config.flows.settings)
    app = create_app(cfg, clock=clock)
    branches: Counter[str] = Counter()
    for n in range(60):
        caller = f"+1415555{n:04d}"
        heard_first = None
        for _ in range(2):
            call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN,
                                 from_=caller, to="+15005550200")
            call.dial()
            call.answer_dial()
            heard_first = heard_first or call.heard[0]
            assert call.heard[0] == heard_first  # the same caller gets the same branch
        tags = call_row(app, call.call_sid).tags
        branches[tags["trial"]] += 1
        assert (tags["trial"] == "friendly") == ("Hi there" in heard_first)
    assert 3 <= branches["friendly"] <= 25 and branches["classic"] > branches["friendly"]


def test_returning_caller_is_not_first_time(config, clock, flows_dir):
    (flows_dir / "returning.yaml").write_text("""\
flow: returning
human: "+15005550006"
start: hello
nodes:
  hello:
    type: say
    text: "{% if caller.first_time %}Welcome, new caller.{% else %}Welcome back.{% endif %}"
    next: agent
  agent:
    type: transfer
    to: "+15005550006"
""")
    cfg = config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                              numbers={"+15005550300": "returning"},
                              settings=config.flows.settings)
    app = create_app(cfg, clock=clock)
    number = f"+1415{random.randrange(10**6, 10**7)}"  # unseen, even in a reused database

    def one_call() -> SimulatedCall:
        call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, from_=number,
                             to="+15005550300")
        call.dial()
        call.answer_dial()
        clock.advance(60)
        app.extensions["ivr"].writer.drain()  # what the background writer does meanwhile
        return call

    one_call().expect_heard("Welcome, new caller.")
    one_call().expect_heard("Welcome back.")


def test_background_writer_puts_queued_calls_in_the_database(app, place_call, database_url):
    import time

    from sqlalchemy import select

    from ivr_server.db import make_engine, make_session_factory
    from ivr_server.models import Call

    services = app.extensions["ivr"]
    services.start_background()
    try:
        call = place_call()
        call.hangup()
        sessions = make_session_factory(make_engine(database_url))
        outcome = None
        for _ in range(200):  # polls; not a timing assertion
            with sessions() as db:
                outcome = db.scalar(select(Call.outcome).where(Call.call_sid == call.call_sid))
            if outcome:
                break
            time.sleep(0.05)
        assert outcome == "abandoned"
    finally:
        services.close()
