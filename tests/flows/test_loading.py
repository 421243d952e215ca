"""Loading flow files: every broken file is refused with `file:line: message` on the line to edit.

Each broken flow marks the line the problem must be reported on with a `# <-` comment.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from textwrap import dedent, indent

import pytest

from flows.errors import FlowLoadError, Problem
from flows.loader import load_flow_file, load_flow_text

MARK = "# <-"
AGENT = """
agent:
  type: transfer
  to: "+15551234567"
"""


def flow(nodes: str, head: str = "", start: str = "main") -> str:
    """A flow file: header lines, then the nodes (written at column 0), plus an agent node."""
    body = indent(dedent(nodes).strip("\n") + "\n" + AGENT.lstrip("\n"), "  ")
    return f"flow: t\nstart: {start}\n{dedent(head)}nodes:\n{body}"


MENU = """
main:
  type: menu
  prompt: Press 1.
  options:
    - {key: 1, goto: agent}
  fallback: agent
"""


def marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "mark exactly one line with # <-"
    return lines[0]


def refused(text: str) -> list[Problem]:
    with pytest.raises(FlowLoadError) as exc:
        load_flow_text(text, "f.yaml")
    return exc.value.problems


def assert_refused_on_marked_line(text: str, *fragments: str) -> None:
    line = marked_line(text)
    problems = refused(text)
    shown = "\n".join(str(p) for p in problems)
    assert any(p.line == line and all(f in p.message for f in fragments) for p in problems), \
        f"expected line {line} with {fragments}, got:\n{shown}"
    for p in problems:
        assert re.match(r"^f\.yaml:\d+: \S", str(p)), str(p)


CASES = {
    "yaml syntax error (unclosed bracket)": (flow("""
        main:
          type: menu
          prompt: [Press 1.  # <-
          options:
            - {key: 1, goto: agent}
          fallback: agent
        """), ["YAML syntax", "not closed"]),
    "yaml syntax error (bad indentation)": (flow("""
        main:
          type: menu
          prompt: Press 1.
         options: x  # <-
        """), ["YAML syntax"]),
    "unquoted template value": (flow("""
        main:
          type: say
          text: {{ name }} hello  # <-
          next: agent
        """), ["YAML syntax", "must be quoted"]),
    "duplicate key": (flow(MENU + "  fallback: agent  # <-\n"), ["duplicate key 'fallback'"]),
    "unknown field (typo)": (flow(MENU + "  retires: 3  # <-\n"),
                             ["retires", "unknown field"]),
    "unknown node type": (flow("""
        main:
          type: transfr  # <-
          to: "+15551234567"
        """), ["unknown node type 'transfr'"]),
    "missing required field": (flow("""
        main:  # <-
          type: menu
          prompt: Press 1.
          options:
            - {key: 1, goto: agent}
        """), ["missing required field 'fallback'"]),
    "menu key that is not a single key": (flow("""
        main:
          type: menu
          prompt: Press 1.
          options:
            - {key: 12, goto: agent}  # <-
          fallback: agent
        """), ["options.0.key"]),
    "duplicate menu keys": (flow("""
        main:
          type: menu
          prompt: Press 1.
          options:
            - {key: 1, goto: agent}
            - {key: 2, goto: agent}
            - {key: "1", goto: agent}  # <-
          fallback: agent
        """), ["key '1' is used by more than one option"]),
    "split shares not adding to 100": (flow("""
        main:
          type: split
          branches:  # <-
            - {name: a, share: 50, goto: agent}
            - {name: b, share: 40, goto: agent}
        """), ["add up to 90, not 100"]),
    "unknown time zone": (flow(MENU, head="timezone: Mars/Olympus  # <-\n"),
                          ["unknown time zone 'Mars/Olympus'"]),
    "hours range not HH:MM-HH:MM": (flow(MENU, head="""
        hours:
          office:
            mon-fri: "08:00-18:00"
            sat: "9-13"  # <-
        """), ["'9-13'"]),
    "hours range ending before it starts": (flow(MENU, head="""
        hours:
          night:
            mon-fri: "22:00-06:00"  # <-
        """), ["'22:00-06:00'", "crosses midnight"]),
    "hours range past midnight": (flow(MENU, head="""
        hours:
          late:
            sun: "20:00-24:30"  # <-
        """), ["'20:00-24:30'"]),
    "hours on an unknown day": (flow(MENU, head="""
        hours:
          office:
            funday: "08:00-18:00"  # <-
        """), ["'funday' is not a day"]),
    "min_digits larger than max_digits": (flow("""
        main:
          type: collect
          prompt: Your number?
          save_as: acct
          min_digits: 9  # <-
          max_digits: 8
          next: agent
          fallback: agent
        """), ["min_digits is larger than max_digits"]),
    "regex pattern that does not compile": (flow("""
        main:
          type: collect
          prompt: Your number?
          save_as: acct
          pattern: "([0-9]"  # <-
          next: agent
          fallback: agent
        """), ["pattern does not compile"]),
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
    "invalid date": (flow(MENU, head="holidays:\n  - 2026-13-01  # <-\n"),
                     ["cannot read '2026-13-01'"]),
    "yaml tag that could run code": (flow(MENU, head="description: !!python/object:os.system ls  "
                                                     "# <-\n"), ["cannot read"]),
    "yaml merge key": (flow("""
        main:
          <<: {type: hangup}  # <-
        """), ["merge keys (<<) are not supported"]),
    "alias that contains itself": ("flow: t\nstart: &a [*a]  # <-\nnodes: {}\n",
                                   ["alias refers to the value that contains it"]),
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


def test_schema_problems_in_one_file_are_all_reported_in_line_order() -> None:
    text = flow("""
        main:
          type: menu
          prompt: Press 1.
          options:
            - {key: 12, goto: agent}
          fallbak: agent
        """, head="timezone: Mars/Olympus\n")
    problems = refused(text)
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    messages = "\n".join(str(p) for p in problems)
    for expected in ("f.yaml:3: timezone: unknown time zone", "f.yaml:9: node 'main' options.0.key",
                     "f.yaml:10: node 'main' fallbak: unknown field",
                     "missing required field 'fallback'"):
        assert expected in messages


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


def test_valid_file_loads_with_a_stable_content_hash_as_version() -> None:
    text = flow(MENU)
    first, again = load_flow_text(text, "a.yaml"), load_flow_text(text, "b.yaml")
    assert re.fullmatch(r"[0-9a-f]{16}", first.version)
    assert first.version == again.version
    assert first.name == "t" and first.warnings == ()


def test_version_changes_when_the_text_changes() -> None:
    text = flow(MENU)
    before = load_flow_text(text, "f.yaml").version
    assert load_flow_text(text.replace("Press 1.", "Press one."), "f.yaml").version != before
    assert load_flow_text(text + "# a comment\n", "f.yaml").version != before


def test_demo_flow_loads_without_warnings() -> None:
    demo = Path(__file__).parents[2] / "flows" / "examples" / "company.yaml"
    loaded = load_flow_file(demo)
    assert loaded.name == "company" and loaded.warnings == ()


def test_file_that_cannot_be_read_is_refused_on_line_1(tmp_path: Path) -> None:
    with pytest.raises(FlowLoadError) as exc:
        load_flow_file(tmp_path / "missing.yaml")
    assert str(exc.value).startswith(f"{tmp_path / 'missing.yaml'}:1: cannot read the file")


def test_load_flow_file_reads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(flow(MENU), encoding="utf-8")
    assert load_flow_file(path).file == str(path)


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("- a\n- b\n", "a flow file is a mapping"),
    ("flow: t\nstart: s\nnodes:\n  s: hello\n", "node 's'"),
    ("flow: t\nstart: s\nnodes:\n  s:\n    say: hi\n", "a node needs a type"),
])
def test_file_of_the_wrong_shape_is_refused(text: str, message: str) -> None:
    assert message in str(refused(text)[0])


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["flow: t", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    problems = refused("\n".join([*lines, "start: s", "nodes: {}"]) + "\n")
    assert "expands to more than" in problems[0].message


def test_aliases_that_do_not_explode_still_work() -> None:
    text = flow("""
        main:
          type: menu
          prompt: &ask Press 1.
          no_input: *ask
          options:
            - {key: 1, goto: agent}
          fallback: agent
        """)
    assert load_flow_text(text, "f.yaml").model.nodes["main"].no_input[0].say == "Press 1."


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
