"""Loading flow files: broken YAML, wrong shapes and invalid fields are refused with
`file:line: message` on the line to edit; valid files load with a stable version.

Each broken flow marks the line the problem must be reported on with a `# <-` comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.errors import FlowLoadError
from flows.loader import load_flow_file, load_flow_text

from .loading_helpers import (
    MENU,
    assert_refused_on_marked_line,
    flow,
    refused,
)

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


def test_a_flow_says_whether_it_reads_the_callers_history():
    from flows.loader import load_flow_text

    plain = """\
flow: t
human: "+15005550006"
start: agent
nodes:
  agent: {type: transfer, to: "+15005550006"}
"""
    assert not load_flow_text(plain, "t.yaml").reads_caller_history
    greeting = plain.replace("start: agent", "start: hi") + (
        '  hi: {type: say, text: "{% if caller.first_time %}Welcome{% endif %}", next: agent}\n')
    assert load_flow_text(greeting, "t.yaml").reads_caller_history
