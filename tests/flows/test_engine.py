"""The engine as plain function calls: what the caller hears, where the call goes, what is kept."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest

from flows import actions as act
from flows.engine import DEFAULT_GOODBYE, MAX_NODES_PER_TURN, step
from flows.errors import FlowRuntimeError
from flows.events import (
    CallStarted,
    DigitsEntered,
    Event,
    LookupDone,
    NoInput,
    Repeat,
    TransferEnded,
)
from flows.loader import Flow, load_flow_file, load_flow_text
from flows.schema import FlowModel
from flows.session import Session, new_session

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday, 11:00 in New York
DEMO = Path(__file__).parents[2] / "flows" / "examples" / "company.yaml"


def load(text: str) -> Flow:
    return load_flow_text(dedent(text), "t.yaml")


def start(flow: Flow, caller: str = "+15551230001", now: dt.datetime = NOW,
          **started: object) -> tuple[Session, list[act.Action]]:
    session = new_session(call_sid="CA1", flow=flow.name, version=flow.version, caller=caller,
                          called="+15550000000", now=now)
    return step(flow, session, CallStarted(**started), now)  # type: ignore[arg-type]


def play(flow: Flow, session: Session, *events: Event,
         now: dt.datetime = NOW) -> tuple[Session, list[act.Action]]:
    """Feed events one by one; return the last session and the last step's actions."""
    out: list[act.Action] = []
    for event in events:
        session, out = step(flow, session, event, now)
    return session, out


def heard(actions: list[act.Action]) -> list[str]:
    """Every sentence the caller hears, including prompts played while listening for keys."""
    texts: list[str] = []
    for a in actions:
        for p in (a.prompts if isinstance(a, act.Gather) else (a,)):
            if isinstance(p, act.Say):
                texts.append(p.text)
    return texts


def only(actions: list[act.Action], kind: type) -> object:
    found = [a for a in actions if isinstance(a, kind)]
    assert len(found) == 1, actions
    return found[0]


def ends_call(actions: list[act.Action]) -> bool:
    return isinstance([a for a in actions if not isinstance(a, act.Log)][-1], act.Hangup)


MENU_FLOW = """
flow: t
start: menu
nodes:
  menu:
    type: menu
    prompt: Press 1 for sales.
    options:
      - {key: 1, label: sales, goto: sales}
    no_input: I didn't hear you.
    no_match: That isn't a choice.
    retries: 2
    fallback: desk
  sales:
    type: transfer
    to: "+15551112222"
    say: Connecting you to sales.
  desk:
    type: transfer
    to: "sip:desk@pbx.example.com"
"""


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


# -- switch, hours, holidays ---------------------------------------------------------------

HOURS_FLOW = """
flow: t
timezone: America/New_York
start: check
hours:
  office:
    mon-fri: "09:00-17:00"
holidays:
  - 2026-12-25
nodes:
  check:
    type: switch
    cases:
      - {when: is_holiday(), goto: holiday}
      - {when: in_hours('office'), goto: open}
    default: closed
  holiday: {type: hangup, say: Happy holidays.}
  open: {type: hangup, say: We are open.}
  closed: {type: hangup, say: We are closed.}
"""


def answer_at(now: dt.datetime) -> str:
    return heard(start(load(HOURS_FLOW), now=now)[1])[0]


@pytest.mark.parametrize("local, expected", [
    ((2026, 3, 6, 8, 59), "We are closed."),  # Friday before DST (EST)
    ((2026, 3, 6, 9, 0), "We are open."),
    ((2026, 3, 9, 9, 0), "We are open."),  # Monday after DST started (EDT)
    ((2026, 3, 9, 16, 59), "We are open."),
    ((2026, 3, 9, 17, 0), "We are closed."),
    ((2026, 3, 7, 12, 0), "We are closed."),  # Saturday
    ((2026, 12, 25, 12, 0), "Happy holidays."),
    ((2026, 12, 25, 0, 0), "Happy holidays."),
    ((2026, 12, 24, 16, 0), "We are open."),  # Christmas Eve is a working day
])
def test_switch_routes_on_hours_and_holidays_in_the_flow_time_zone(local: tuple[int, ...],
                                                                    expected: str) -> None:
    now = dt.datetime(*local, tzinfo=NY).astimezone(UTC)  # the server's clock is UTC
    assert answer_at(now) == expected


def test_same_utc_time_is_closed_before_the_dst_change_and_open_after() -> None:
    # 13:30 UTC is 08:30 EST on Friday 6 March but 09:30 EDT on Monday 9 March 2026.
    assert answer_at(dt.datetime(2026, 3, 6, 13, 30, tzinfo=UTC)) == "We are closed."
    assert answer_at(dt.datetime(2026, 3, 9, 13, 30, tzinfo=UTC)) == "We are open."


def test_holiday_starts_at_local_midnight_not_utc_midnight() -> None:
    # 03:00 UTC on 25 December is still 22:00 on the 24th in New York.
    assert answer_at(dt.datetime(2026, 12, 25, 3, 0, tzinfo=UTC)) == "We are closed."
    assert answer_at(dt.datetime(2026, 12, 25, 5, 0, tzinfo=UTC)) == "Happy holidays."


SWITCH_FLOW = """
flow: t
start: route
nodes:
  route:
    type: switch
    cases:
      - {when: "caller.number.startswith('+44')", goto: uk}
      - {when: "tier == 'gold' and caller.known", goto: gold}
      - {when: "caller.first_time", goto: new}
    default: other
  uk: {type: hangup, say: UK.}
  gold: {type: hangup, say: Gold.}
  new: {type: hangup, say: New.}
  other: {type: hangup, say: Other.}
"""


@pytest.mark.parametrize("caller, previous_calls, expected", [
    ("+447700900123", 0, "UK."),
    ("+15551230001", 0, "New."),
    ("+15551230001", 3, "Other."),
])
def test_switch_routes_on_the_caller(caller: str, previous_calls: int, expected: str) -> None:
    out = start(load(SWITCH_FLOW), caller=caller, previous_calls=previous_calls)[1]
    assert heard(out) == [expected]


def test_switch_condition_on_an_undefined_variable_is_false_not_an_error() -> None:
    out = start(load(SWITCH_FLOW), previous_calls=1)[1]  # `tier` was never set
    assert heard(out) == ["Other."]


def test_set_renders_templates_into_call_variables() -> None:
    flow = load("""
        flow: t
        start: remember
        nodes:
          remember:
            type: set
            vars:
              last4: "{{ caller.number[-4:] }}"
              plan: gold
              tags: ["{{ call.sid }}", fixed]
            next: speak
          speak:
            type: hangup
            say: "Calling from {{ last4 }} on {{ plan }}."
        """)
    session, out = start(flow, caller="+15551239876")
    assert session.vars == {"last4": "9876", "plan": "gold", "tags": ["CA1", "fixed"]}
    assert heard(out) == ["Calling from 9876 on gold."]


# -- http lookups ------------------------------------------------------------------------

HTTP_FLOW = """
flow: t
start: lookup
nodes:
  lookup:
    type: http
    url: "{{ settings.crm_url }}/customers"
    params: {phone: "{{ caller.number }}"}
    save: {name: customer.name, first_tag: customer.tags.0, city: customer.address.city}
    next: hello
    on_failure: sorry
  hello: {type: hangup, say: "Hello {{ name }} ({{ first_tag }})."}
  sorry: {type: hangup, say: Our records are unavailable.}
"""


def test_http_lookup_asks_the_edge_with_rendered_url_and_params() -> None:
    session, out = start(load(HTTP_FLOW), settings={"crm_url": "https://crm.example"})
    request = only(out, act.HttpRequest)
    assert (request.method, request.url) == ("GET", "https://crm.example/customers")
    assert request.params == {"phone": "+15551230001"} and session.node == "lookup"
    assert heard(out) == []


def test_http_lookup_success_saves_dotted_fields() -> None:
    flow = load(HTTP_FLOW)
    data = {"customer": {"name": "Ana", "tags": ["vip", "eu"], "address": {"zip": "1000"}}}
    session, out = play(flow, start(flow)[0], LookupDone(ok=True, status=200, data=data))
    assert session.vars == {"name": "Ana", "first_tag": "vip"}  # no city in the answer
    assert session.known_caller is True
    assert heard(out) == ["Hello Ana (vip)."]


def test_http_lookup_failure_takes_on_failure() -> None:
    flow = load(HTTP_FLOW)
    session, out = play(flow, start(flow)[0], LookupDone(ok=False, status=503, error="timeout"))
    assert heard(out) == ["Our records are unavailable."]
    assert session.vars == {} and session.known_caller is False


# -- splits ------------------------------------------------------------------------------

SPLIT_FLOW = """
flow: t
start: ab
nodes:
  ab:
    type: split
    branches:
      - {name: new_menu, share: 70, goto: a}
      - {name: old_menu, share: 30, goto: b}
  a: {type: hangup, say: A.}
  b: {type: hangup, say: B.}
"""


def test_split_is_sticky_per_caller_and_recorded_in_tags() -> None:
    flow = load(SPLIT_FLOW)
    first = start(flow, caller="+15551230042")
    again = start(flow, caller="+15551230042")
    assert heard(first[1]) == heard(again[1])
    assert first[0].tags == again[0].tags
    assert first[0].tags["ab"] == {"A.": "new_menu", "B.": "old_menu"}[heard(first[1])[0]]


def test_split_shares_are_roughly_respected_over_many_callers() -> None:
    flow = load(SPLIT_FLOW)
    counts = Counter(start(flow, caller=f"+1555{n:07d}")[0].tags["ab"] for n in range(2000))
    assert 0.65 < counts["new_menu"] / 2000 < 0.75


# -- transfers ---------------------------------------------------------------------------

TRANSFER_FLOW = """
flow: t
start: menu
nodes:
  menu:
    type: menu
    prompt: Press 1 for billing.
    options:
      - {key: 1, label: billing, goto: account}
    save_as: reason
    fallback: billing_desk
  account:
    type: collect
    prompt: Your account number.
    save_as: account_number
    next: billing_desk
    fallback: billing_desk
  billing_desk:
    type: transfer
    to: "+15551112222"
    say: Connecting you to billing.
    caller_id: "{{ call.to }}"
    ON_FAILURE
  desk:
    type: transfer
    to: "client:front-desk"
    context: {why: "{{ reason }} / acct {{ account_number[-4:] }}"}
"""


def transfer_flow(on_failure: str = "") -> Flow:
    return load(TRANSFER_FLOW.replace("ON_FAILURE", on_failure))


def at_billing_desk(flow: Flow) -> tuple[Session, list[act.Action]]:
    return play(flow, start(flow)[0], DigitsEntered("1"), DigitsEntered("12345678#"))


def test_transfer_passes_what_the_caller_already_said() -> None:
    session, out = at_billing_desk(transfer_flow())
    dial = only(out, act.Dial)
    assert heard(out) == ["Connecting you to billing."]
    assert (dial.target, dial.kind, dial.caller_id) == ("+15551112222", "number", "+15550000000")
    assert dial.context == {"reason": "billing", "account_number": "12345678",
                            "choices": "billing"}


def test_transfer_with_its_own_context_renders_each_entry() -> None:
    flow = transfer_flow("on_failure: desk")
    session, out = play(flow, at_billing_desk(flow)[0], TransferEnded("no-answer"))
    dial = only(out, act.Dial)
    assert (dial.target, dial.kind) == ("client:front-desk", "client")
    assert dial.context == {"why": "billing / acct 5678"}


@pytest.mark.parametrize("status", ["completed", "answered"])
def test_answered_transfer_ends_the_call_as_transferred(status: str) -> None:
    flow = transfer_flow()
    session, out = play(flow, at_billing_desk(flow)[0], TransferEnded(status, duration=120))
    assert session.outcome == "transferred" and session.done
    assert heard(out) == [] and ends_call(out)


def test_failed_transfer_takes_on_failure() -> None:
    flow = transfer_flow("on_failure: desk")
    session, out = play(flow, at_billing_desk(flow)[0], TransferEnded("busy"))
    assert only(out, act.Dial).node == "desk" and not session.done


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_failed_transfer_without_on_failure_says_a_polite_goodbye(status: str) -> None:
    flow = transfer_flow()
    session, out = play(flow, at_billing_desk(flow)[0], TransferEnded(status))
    assert heard(out) == [DEFAULT_GOODBYE]
    assert session.outcome == "failed" and session.done and ends_call(out)


def test_hangup_node_says_goodbye_and_records_its_outcome() -> None:
    flow = load("""
        flow: t
        start: bye
        nodes:
          bye: {type: hangup, say: [Goodbye., {pause: 1}], outcome: abandoned}
        """)
    session, out = start(flow)
    assert heard(out) == ["Goodbye."] and act.Pause(1.0) in out
    assert session.outcome == "abandoned" and ends_call(out)


# -- the demo flow -----------------------------------------------------------------------

OPEN = dt.datetime(2026, 3, 10, 10, 0, tzinfo=NY)  # a Tuesday morning in New York
CRM = {"crm_url": "https://crm.example"}


def demo_greeting(answer: LookupDone, previous_calls: int = 0) -> str:
    demo = load_flow_file(DEMO)
    session, out = start(demo, now=OPEN, settings=CRM, previous_calls=previous_calls)
    assert only(out, act.HttpRequest).params == {"phone": "+15551230001"}
    return heard(play(demo, session, answer, now=OPEN)[1])[0]


@pytest.mark.parametrize("answer", [
    LookupDone(ok=False, status=404),
    LookupDone(ok=False, error="timeout"),
    LookupDone(ok=True, status=200, data={}),
    LookupDone(ok=True, status=200, data={"first_name": None}),
])
def test_demo_never_greets_a_first_time_caller_by_name(answer: LookupDone) -> None:
    assert demo_greeting(answer) == "Thanks for calling Acme."


def test_demo_greets_a_known_caller_by_name() -> None:
    answer = LookupDone(ok=True, status=200, data={"first_name": "Ana", "tier": "gold"})
    assert demo_greeting(answer, previous_calls=4) == "Hello Ana, thanks for calling Acme."


def test_demo_sends_gold_customers_to_priority_support_with_their_details() -> None:
    demo = load_flow_file(DEMO)
    session = start(demo, now=OPEN, settings=CRM)[0]
    answer = LookupDone(ok=True, status=200, data={"first_name": "Ana", "tier": "gold"})
    session, out = play(demo, session, answer, DigitsEntered("2"), now=OPEN)
    dial = only(out, act.Dial)
    assert (dial.target, dial.kind) == ("client:priority-desk", "client")
    assert dial.context == {"customer_name": "Ana", "customer_tier": "gold",
                            "reason": "support", "choices": "support"}


def test_demo_is_closed_on_a_holiday_even_in_office_hours() -> None:
    out = start(load_flow_file(DEMO), now=dt.datetime(2026, 12, 25, 10, 0, tzinfo=NY))[1]
    assert heard(out)[0].startswith("Thanks for calling Acme. We're closed right now.")
    assert heard(out)[-1] == "Goodbye." and ends_call(out)


# -- safety ------------------------------------------------------------------------------


def say_flow(text: str) -> Flow:
    quoted = "'" + text.replace("'", "''") + "'"  # a YAML single-quoted scalar
    return load(f"flow: t\nstart: speak\nnodes:\n  speak: {{type: hangup, say: {quoted}}}\n")


def test_runaway_chain_of_nodes_is_stopped_naming_flow_and_node() -> None:
    chain = "".join(f"  s{i}: {{type: say, text: 'Step {i}.', next: s{i + 1}}}\n"
                    for i in range(MAX_NODES_PER_TURN + 1))
    flow = load("flow: t\nstart: s0\nnodes:\n" + chain + f"  s{MAX_NODES_PER_TURN + 1}: "
                "{type: hangup}\n")
    with pytest.raises(FlowRuntimeError) as exc:
        start(flow)
    assert exc.value.flow == "t" and exc.value.node == f"s{MAX_NODES_PER_TURN}"
    assert "flow 't', node 's100'" in str(exc.value)


def test_runaway_loop_that_slipped_past_the_linter_is_stopped() -> None:
    data = {"flow": "spin", "start": "a", "nodes": {
        "a": {"type": "set", "vars": {"n": "1"}, "next": "b"},
        "b": {"type": "switch", "cases": [{"when": "true", "goto": "a"}], "default": "a"}}}
    flow = Flow(model=FlowModel.model_validate(data), source="", file="spin.yaml", lines={})
    with pytest.raises(FlowRuntimeError, match="flow 'spin', node '[ab]'.*without waiting"):
        start(flow)


def test_jinja_helpers_that_print_python_objects_are_not_available() -> None:
    out = start(say_flow("x{{ cycler }}{{ lipsum }}x"))[1]
    assert heard(out) == ["xx"]


@pytest.mark.parametrize("template", ["{{ ''.__class__ }}", "{{ caller.__class__ }}",
                                      "{{ in_hours.__globals__ }}", "{{ settings.__init__ }}"])
def test_templates_print_nothing_of_python_internals(template: str) -> None:
    with pytest.raises(FlowRuntimeError, match="unsafe") as exc:
        start(say_flow("x" + template + "x"))
    assert "<class" not in str(exc.value) and "<function" not in str(exc.value)


@pytest.mark.parametrize("template", ["{{ ''.__class__.__mro__ }}",
                                      "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                      "{{ in_hours.__globals__['__builtins__'] }}"])
def test_template_reaching_for_python_internals_fails_the_node(template: str) -> None:
    with pytest.raises(FlowRuntimeError) as exc:
        start(say_flow(template))
    assert "flow 't', node 'speak'" in str(exc.value)
    assert "<class" not in str(exc.value)


def test_condition_reaching_for_python_internals_fails_the_node() -> None:
    flow = load("""
        flow: t
        start: route
        nodes:
          route:
            type: switch
            cases:
              - {when: "''.__class__.__mro__[1].__subclasses__()", goto: a}
            default: a
          a: {type: hangup}
        """)
    with pytest.raises(FlowRuntimeError, match="flow 't', node 'route' \\(line 8\\)"):
        start(flow)


def test_in_hours_with_hours_named_at_run_time_fails_the_node_not_the_server() -> None:
    flow = load("""
        flow: t
        start: remember
        hours: {office: {mon-fri: "09:00-17:00"}}
        nodes:
          remember: {type: set, vars: {dept: nope}, next: speak}
          speak: {type: hangup, say: "Open: {{ in_hours(dept) }}"}
        """)
    with pytest.raises(FlowRuntimeError, match="node 'speak'.*nope"):
        start(flow)


def test_bad_caller_id_template_fails_the_node() -> None:
    flow = load("""
        flow: t
        start: desk
        nodes:
          desk: {type: transfer, to: "+15551112222",
                 caller_id: "{{ 100 // caller.previous_calls }}"}
        """)
    with pytest.raises(FlowRuntimeError, match="node 'desk'.*caller_id"):
        start(flow)


def test_input_for_a_call_with_no_waiting_node_is_an_error() -> None:
    flow = load(MENU_FLOW)
    session = new_session(call_sid="CA9", flow="t", version=flow.version, caller="+1555",
                          called="+1556", now=NOW)
    with pytest.raises(FlowRuntimeError, match="no node is waiting"):
        step(flow, session, DigitsEntered("1"), NOW)


def test_templates_cannot_pin_the_cpu_with_huge_powers_or_repeats():
    from flows.templates import TemplateError, render

    for text in ("{{ 3 ** 100000000 }}", "{{ 'ab' * 100000000 }}", "{{ [1] * 10**9 }}"):
        with pytest.raises(TemplateError):
            render(text, {})
    assert render("{{ 2 ** 10 }} {{ 'ab' * 2 }}", {}) == "1024 abab"


def test_a_field_the_crm_did_not_send_renders_empty_instead_of_failing():
    from flows.templates import render

    assert render("Hello {{ customer.name }}.", {}) == "Hello ."
