"""The engine as plain function calls: switches, hours and holidays, variables, HTTP lookups,
splits and the demo flow."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from flows import actions as act
from flows.events import (
    DigitsEntered,
    LookupDone,
)
from flows.loader import load_flow_file

from .engine_helpers import (
    DEMO,
    NY,
    UTC,
    ends_call,
    heard,
    load,
    only,
    play,
    start,
)

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
