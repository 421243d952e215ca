"""The engine as plain function calls: menus and collecting digits."""

from __future__ import annotations

import pytest

from flows import actions as act
from flows.engine import step
from flows.events import (
    DigitsEntered,
    LookupDone,
    NoInput,
    Repeat,
    TransferEnded,
)
from flows.loader import Flow

from .engine_helpers import (
    MENU_FLOW,
    NOW,
    heard,
    load,
    only,
    play,
    start,
)

# -- menus -------------------------------------------------------------------------------


def test_call_start_plays_the_menu_and_waits_for_a_key() -> None:
    flow = load(MENU_FLOW)
    session, out = start(flow)
    gather = only(out, act.Gather)
    assert heard(out) == ["Press 1 for sales."]
    assert (gather.node, gather.num_digits, gather.choices) == ("menu", 1, ("1",))
    assert session.node == "menu" and gather.turn == session.turn


def test_pressing_a_menu_key_goes_where_the_option_says() -> None:
    flow = load(MENU_FLOW)
    session, out = play(flow, start(flow)[0], DigitsEntered("1"))
    dial = only(out, act.Dial)
    assert heard(out) == ["Connecting you to sales."]
    assert (dial.target, dial.kind) == ("+15551112222", "number")
    assert session.choices == ["sales"] and session.node == "sales"


def test_no_input_reprompts_with_the_no_input_text_then_the_menu() -> None:
    flow = load(MENU_FLOW)
    session, out = play(flow, start(flow)[0], NoInput())
    assert heard(out) == ["I didn't hear you.", "Press 1 for sales."]
    assert only(out, act.Gather).node == "menu" and session.attempts == 1


def test_wrong_key_reprompts_with_the_no_match_text() -> None:
    flow = load(MENU_FLOW)
    session, out = play(flow, start(flow)[0], DigitsEntered("7"))
    assert heard(out) == ["That isn't a choice.", "Press 1 for sales."]
    assert session.choices == []


def test_fallback_is_taken_once_the_retries_are_used_up() -> None:
    flow = load(MENU_FLOW)
    session = start(flow)[0]
    session, out = play(flow, session, NoInput(), DigitsEntered("9"))
    assert only(out, act.Gather).node == "menu"  # two failures: still asking (retries: 2)
    session, out = play(flow, session, NoInput())
    dial = only(out, act.Dial)
    assert (dial.target, dial.kind, session.node) == ("sip:desk@pbx.example.com", "sip", "desk")
    assert "I didn't hear you." not in heard(out)


def test_menu_with_no_retries_falls_back_at_the_first_miss() -> None:
    flow = load(MENU_FLOW.replace("retries: 2", "retries: 0"))
    session, out = play(flow, start(flow)[0], NoInput())
    assert only(out, act.Dial).node == "desk"


def test_out_of_order_input_reasks_without_counting_a_retry() -> None:
    flow = load(MENU_FLOW)
    session = play(flow, start(flow)[0], NoInput())[0]
    for stale in (TransferEnded("completed"), LookupDone(ok=True), Repeat()):
        session, out = play(flow, session, stale)
        assert heard(out) == ["Press 1 for sales."]
        assert session.attempts == 1
    session, out = play(flow, session, NoInput())
    assert only(out, act.Gather).node == "menu"  # the second miss, not the fifth
    session, out = play(flow, session, NoInput())
    assert only(out, act.Dial).node == "desk"


def test_step_never_mutates_the_session_it_was_given() -> None:
    flow = load(MENU_FLOW)
    session = start(flow)[0]
    for event in (NoInput(), DigitsEntered("9"), DigitsEntered("1"), TransferEnded("busy")):
        before = session.to_dict()
        after, _ = step(flow, session, event, NOW)
        assert session.to_dict() == before
        assert after is not session
        session = after


def test_events_after_the_call_ended_only_hang_up() -> None:
    flow = load(MENU_FLOW)
    session = play(flow, start(flow)[0], DigitsEntered("1"), TransferEnded("completed"))[0]
    assert session.done and session.outcome == "transferred"
    assert step(flow, session, DigitsEntered("1"), NOW)[1] == [act.Hangup()]


# -- collect -----------------------------------------------------------------------------

COLLECT_FLOW = """
flow: t
start: ask
nodes:
  ask:
    type: collect
    prompt: Your account number, then pound.
    save_as: account
    min_digits: MIN
    max_digits: MAX
    EXTRA
    invalid: That number doesn't look right.
    no_input: I didn't hear anything.
    retries: 1
    next: thanks
    fallback: agent
  thanks:
    type: say
    text: "Thanks, account {{ account }}."
    next: agent
  agent:
    type: transfer
    to: "+15551112222"
"""


def collect_flow(min_digits: int = 4, max_digits: int = 6, extra: str = "") -> Flow:
    return load(COLLECT_FLOW.replace("MIN", str(min_digits)).replace("MAX", str(max_digits))
                .replace("EXTRA", extra))


def test_collect_saves_digits_within_the_length_limits() -> None:
    flow = collect_flow()
    session, out = play(flow, start(flow)[0], DigitsEntered("12345#"))
    assert session.vars["account"] == "12345"
    assert heard(out) == ["Thanks, account 12345."]
    assert only(out, act.Dial).node == "agent"


@pytest.mark.parametrize("digits", ["123", "1234567", "12a4"])
def test_collect_refuses_digits_outside_the_limits(digits: str) -> None:
    flow = collect_flow()
    session, out = play(flow, start(flow)[0], DigitsEntered(digits))
    assert heard(out) == ["That number doesn't look right.", "Your account number, then pound."]
    assert "account" not in session.vars and session.attempts == 1


def test_collect_of_a_fixed_length_asks_for_exactly_that_many_digits() -> None:
    flow = collect_flow(8, 8)
    gather = only(start(flow)[1], act.Gather)
    assert (gather.num_digits, gather.finish_on_key) == (8, "#")
    gather = only(start(collect_flow(4, 6))[1], act.Gather)
    assert gather.num_digits is None


@pytest.mark.parametrize("digits, accepted", [("79927398713", True), ("79927398710", False),
                                              ("4539578763621486", True)])
def test_collect_checks_the_luhn_digit(digits: str, accepted: bool) -> None:
    flow = collect_flow(8, 20, "validate: luhn")
    session = play(flow, start(flow)[0], DigitsEntered(digits))[0]
    assert (session.vars.get("account") == digits) is accepted


@pytest.mark.parametrize("digits, accepted", [("90001", True), ("10001", False)])
def test_collect_checks_the_pattern(digits: str, accepted: bool) -> None:
    flow = collect_flow(4, 6, 'pattern: "9[0-9]+"')
    session = play(flow, start(flow)[0], DigitsEntered(digits))[0]
    assert (session.vars.get("account") == digits) is accepted


def test_collect_falls_back_after_retries_of_no_input_or_bad_digits() -> None:
    flow = collect_flow()
    session, out = play(flow, start(flow)[0], NoInput())
    assert heard(out)[0] == "I didn't hear anything."
    session, out = play(flow, session, DigitsEntered("1"))
    assert only(out, act.Dial).node == "agent" and "account" not in session.vars
