"""Loading flow files: references to unknown nodes, unreachable or looping nodes, templates,
conditions and transfer targets are checked and reported with `file:line: message`.

Each broken flow marks the line the problem must be reported on with a `# <-` comment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.errors import FlowLoadError
from flows.loader import load_flow_text

from .loading_helpers import (
    MENU,
    assert_refused_on_marked_line,
    flow,
    marked_line,
    refused,
)

CASES = {
    "unknown node in a menu option goto": (flow("""
        main:
          type: menu
          prompt: Press 1 or 2.
          options:
            - {key: 1, goto: agent}
            - {key: 2, goto: agnet}  # <-
          fallback: agent
        """), ["options[2]", "unknown node 'agnet'"]),
    "unknown node in a fallback": (flow(MENU.replace("fallback: agent", "fallback: nope  # <-")),
                                   ["fallback goes to unknown node 'nope'"]),
    "unknown node in next": (flow("""
        main:
          type: say
          text: Hello.
          next: nope  # <-
        """), ["next goes to unknown node 'nope'"]),
    "unknown node in an http on_failure": (flow("""
        main:
          type: http
          url: https://crm.example.com
          next: agent
          on_failure: nope  # <-
        """), ["on_failure goes to unknown node 'nope'"]),
    "unknown node in a transfer on_failure": (flow("""
        main:
          type: transfer
          to: "+15551234567"
          on_failure: nope  # <-
        """), ["on_failure goes to unknown node 'nope'"]),
    "unknown node in a switch default": (flow("""
        main:
          type: switch
          cases:
            - {when: "true", goto: agent}
          default: nope  # <-
        """), ["default goes to unknown node 'nope'"]),
    "unknown node in a switch case": (flow("""
        main:
          type: switch
          cases:
            - when: "false"
              goto: agent
            - when: "true"
              goto: nope  # <-
          default: agent
        """), ["cases[1] goes to unknown node 'nope'"]),
    "unknown node in a split branch": (flow("""
        main:
          type: split
          branches:
            - {name: a, share: 50, goto: agent}
            - {name: b, share: 50, goto: nope}  # <-
        """), ["branches[b] goes to unknown node 'nope'"]),
    "start node missing": (flow(MENU, start="nowhere  # <-"),
                           ["start node 'nowhere' is not defined"]),
    "loop that never waits for the caller": (flow("""
        main:
          type: menu
          prompt: Press 1.
          options:
            - {key: 1, goto: agent}
          fallback: again
        again:  # <-
          type: say
          text: Let me check.
          next: check
        check:
          type: switch
          cases:
            - {when: "true", goto: again}
          default: agent
        """), ["loop that never waits for the caller: again -> check -> again"]),
    "menu with no path to a human": (flow("""
        main:  # <-
          type: menu
          prompt: Press 1.
          options:
            - {key: 1, goto: bye}
          fallback: bye
        bye:
          type: hangup
        """), ["menu 'main' has no path to a human"]),
    "template that does not parse": (flow("""
        main:
          type: say
          text: "Hello {{ name"  # <-
          next: agent
        """), ["template error"]),
    "condition that does not parse": (flow("""
        main:
          type: switch
          cases:
            - when: "caller.number == ('+1'"  # <-
              goto: agent
          default: agent
        """), ["condition error"]),
    "in_hours for hours that are not defined": (flow("""
        main:
          type: switch
          cases:
            - when: in_hours('nope')  # <-
              goto: agent
          default: agent
        """, head="hours:\n  office: {mon-fri: '09:00-17:00'}\n"),
        ["no hours named 'nope'", "office"]),
    "transfer target that is not E.164, sip: or client:": (flow("""
        main:
          type: transfer
          to: "5551234"  # <-
        """), ["'5551234' is not an E.164 number"]),
}


@pytest.mark.parametrize("text, fragments", list(CASES.values()), ids=list(CASES))
def test_broken_file_is_refused_on_the_line_to_edit(text: str, fragments: list[str]) -> None:
    assert_refused_on_marked_line(text, *fragments)


@pytest.mark.parametrize("target", ["5551234", "+0123456789", "tel:+15551234567", "sip:desk",
                                    "client:", "+1 555 123 4567"])
def test_transfer_target_must_be_e164_sip_or_client(target: str) -> None:
    problems = refused(flow(f'main:\n  type: transfer\n  to: "{target}"\n'))
    assert [p.message for p in problems if p.severity == "error"] == [
        f"node 'main': {target!r} is not an E.164 number (+15551234567), sip:user@host or "
        "client:name"]


@pytest.mark.parametrize("target", ["+15551234567", "sip:desk@pbx.example.com",
                                    "client:front-desk", "{{ settings.desk_number }}"])
def test_transfer_target_that_is_a_number_uri_or_template_is_accepted(target: str) -> None:
    load_flow_text(flow(f'main:\n  type: transfer\n  to: "{target}"\n'), "f.yaml")


def test_menu_may_opt_out_of_a_path_to_a_human() -> None:
    text = flow("""
        main:
          type: menu
          prompt: Press 1 to hear our address.
          options:
            - {key: 1, goto: bye}
          fallback: bye
          allow_no_human: true
        bye:
          type: hangup
        """)
    loaded = load_flow_text(text, "f.yaml")
    assert loaded.model.nodes["main"].allow_no_human is True


def test_unreachable_node_is_a_warning_not_an_error() -> None:
    text = flow(MENU + "orphan:  # <-\n  type: hangup\n")
    loaded = load_flow_text(text, "f.yaml")
    assert [str(w) for w in loaded.warnings] == [
        f"f.yaml:{marked_line(text)}: warning: node 'orphan' is unreachable from start 'main'"]
    assert loaded.warnings[0].severity == "warning"


def test_reference_and_template_problems_in_one_file_are_all_reported() -> None:
    text = flow("""
        main:
          type: menu
          prompt: "Hi {{ name"
          options:
            - {key: 1, goto: agent}
            - {key: 2, goto: desk}
          fallback: nope
        desk:
          type: transfer
          to: "555"
        """)
    assert [(p.line, p.message[:40]) for p in refused(text)] == [
        (6, "node 'main': template error: unexpected "),
        (10, "node 'main' fallback goes to unknown nod"),
        (13, "node 'desk': '555' is not an E.164 numbe"),
    ]


def test_problems_carry_file_line_and_message_when_printed() -> None:
    with pytest.raises(FlowLoadError) as exc:
        load_flow_text(flow(MENU, start="nowhere"), "flows/main.yaml")
    assert str(exc.value) == "flows/main.yaml:2: start node 'nowhere' is not defined"


def test_checking_a_template_never_evaluates_its_constant_parts() -> None:
    """Jinja folds constant output while compiling; a file with `{{ 3 ** 100000000 }}` would then
    hang `ivr flows check` (and a web worker) before any call is made."""
    text = flow("""
        main:
          type: say
          text: "{{ 3 ** 100000000 }}{{ 'a' | center(10 ** 10) }}"
          next: agent
        """)
    code = ("import sys; from flows.loader import load_flow_text; "
            "load_flow_text(sys.stdin.read(), 'f.yaml')")
    subprocess.run([sys.executable, "-c", code], input=text, text=True, check=True, timeout=30,
                   cwd=Path(__file__).parents[2])


def test_a_call_back_offer_needs_a_node_to_book_it() -> None:
    text = flow("""
        main:
          type: enqueue
          queue: desk
          offer_callback:  # <-
            key: "1"
          fallback: bye
        bye:
          type: hangup
        """)
    assert_refused_on_marked_line(text, "offers a call back but has no `callback` node")


def test_spoken_call_back_words_without_streaming_are_a_warning() -> None:
    text = flow("""
        main:
          type: enqueue
          queue: desk
          offer_callback:
            words:  # <-
              - call me back
          callback: book
          fallback: bye
        book:
          type: callback
          fallback: bye
        bye:
          type: hangup
        """)
    loaded = load_flow_text(text, "f.yaml")
    assert f"f.yaml:{marked_line(text)}: warning: node 'main': offer_callback words are heard " \
        "only with `speech: stream` (Twilio cannot record on hold); callers can press the key" \
        in [str(w) for w in loaded.warnings]
