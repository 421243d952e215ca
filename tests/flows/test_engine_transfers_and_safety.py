"""The engine as plain function calls: transfers, hang-ups, and the guards against runaway flows
and unsafe templates."""

from __future__ import annotations

import pytest

from flows import actions as act
from flows.answers import DEFAULT_GOODBYE
from flows.engine import MAX_NODES_PER_TURN, step
from flows.errors import FlowRuntimeError
from flows.events import (
    DigitsEntered,
    TransferEnded,
)
from flows.loader import Flow
from flows.schema import FlowModel
from flows.session import Session, new_session

from .engine_helpers import (
    MENU_FLOW,
    NOW,
    ends_call,
    heard,
    load,
    only,
    play,
    start,
)

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
