"""Helpers shared by the loading tests: build flow files and check where problems are reported.

Each broken flow marks the line the problem must be reported on with a `# <-` comment.
"""

from __future__ import annotations

import re
from textwrap import dedent, indent

import pytest

from flows.errors import FlowLoadError, Problem
from flows.loader import load_flow_text

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
