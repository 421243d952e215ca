"""Pictures of a flow: every node and edge drawn, labels escaped so the picture says what the file
says, the start marked and the ways to a human stand out."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from textwrap import dedent

import pytest

from flows.graph import boxes_and_edges, to_dot, to_mermaid
from flows.loader import Flow, load_flow_file, load_flow_text
from flows.schema import HUMAN_NODE_TYPES as HUMANS

DEMO = Path(__file__).parents[2] / "flows" / "examples" / "company.yaml"

# Node names Mermaid treats specially (end), quotes, parentheses, '#', '|', ';', '<', '&' and a
# backslash in labels and conditions.
NASTY = load_flow_text(dedent(r"""
    flow: nasty
    start: end
    nodes:
      end:
        type: menu
        prompt: 'Press # or * or 1.'
        options:
          - {key: "#", label: 'say "hi" | <b>', goto: route}
          - {key: "*", goto: to-human}
          - {key: 1, label: 'a\b; c & d', goto: graph}
        fallback: to-human
      route:
        type: switch
        cases:
          - when: 'caller.number == "+1\"x" and (vars.get("k", "") in ["a|b", "c;d"])'
            goto: to-human
          - when: "weekday == 'sat' or in_hours('office')"
            goto: graph
        default: graph
      graph:
        type: split
        branches:
          - {name: left, share: 25, goto: to-human}
          - {name: right, share: 75, goto: lookup}
      lookup:
        type: http
        url: 'https://crm.example/q?a=1&b="2"'
        next: to-human
        on_failure: bye
      to-human:
        type: transfer
        to: "sip:desk@pbx.example.com"
        on_failure: bye
      bye:
        type: hangup
        outcome: failed
    hours:
      office: {mon-fri: "09:00-17:00"}
    """), "nasty.yaml")


def expected_edges(flow: Flow) -> list[tuple[str, str, str]]:
    _, edges = boxes_and_edges(flow)
    return [("(start)", flow.model.start, ""), *((e.src, e.dst, e.label) for e in edges)]


# -- Mermaid -----------------------------------------------------------------------------

NODE = re.compile(r'^    (n\d+)([\[({]{1,2})"([^"]*)"([\])}]{1,2})$')
SHAPES = {("(", ")"), ("[", "]"), ("{", "}"), ("{{", "}}"), ("[(", ")]"), ("[[", "]]"),
          ("([", "])")}  # rounded, box, rhombus, hexagon, cylinder, subroutine, stadium
EDGE = re.compile(r'^    (n\d+|entry) -->(?:\|"([^"]*)"\|)? (n\d+)$')
ENTITIES = {"quot": '"', "lt": "<", "gt": ">", "amp": "&"}


def unescape_mermaid(text: str) -> str:
    assert "<" not in text.replace("<br/>", ""), text  # raw markup would be rendered as HTML
    return re.sub(r"#(\w+);", lambda m: ENTITIES.get(m[1]) or chr(int(m[1])), text)


def parse_mermaid(text: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]],
                                      set[str]]:
    """(box lines by node name, edges by node name, names styled human); fails on any line
    that is not a node, an edge, a comment or a style."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    names: dict[str, str] = {"entry": "(start)"}
    boxes: dict[str, list[str]] = {}
    edges: list[tuple[str, str, str]] = []
    humans: set[str] = set()
    for line in lines[1:]:
        if line.startswith("    %% ") or line.startswith("    classDef "):
            continue
        if line == '    entry(("start")):::start':
            continue
        if m := NODE.match(line):
            assert (m[2], m[4]) in SHAPES, line
            box = [unescape_mermaid(part) for part in m[3].split("<br/>")]
            assert m[1] not in names
            names[m[1]] = box[0]
            boxes[box[0]] = box
        elif m := EDGE.match(line):
            edges.append((names[m[1]], names[m[3]], unescape_mermaid(m[2] or "")))
        elif m := re.match(r"^    class ((?:n\d+,)*n\d+) human$", line):
            humans = {names[i] for i in m[1].split(",")}
        else:
            pytest.fail(f"not a Mermaid flowchart line: {line!r}")
    return boxes, edges, humans


@pytest.mark.parametrize("flow", [NASTY, load_flow_file(DEMO)], ids=["nasty", "demo"])
def test_mermaid_draws_every_node_and_edge_with_exact_labels(flow: Flow) -> None:
    boxes, edges, humans = parse_mermaid(to_mermaid(flow))
    assert list(boxes) == list(flow.model.nodes)
    assert edges == expected_edges(flow)
    assert humans == {n for n, node in flow.model.nodes.items() if node.type in HUMANS}


def test_mermaid_boxes_name_the_node_kind_keys_and_target() -> None:
    boxes, _, _ = parse_mermaid(to_mermaid(NASTY))
    assert boxes["end"] == ["end", "menu", 'keys: # say "hi" | <b>, *, 1 a\\b; c & d']
    assert boxes["to-human"] == ["to-human", "transfer (human)", "to sip:desk@pbx.example.com"]
    assert boxes["bye"] == ["bye", "hangup", "outcome failed"]


def test_mermaid_edges_say_what_takes_them() -> None:
    _, edges, _ = parse_mermaid(to_mermaid(NASTY))
    labels = {label for _, _, label in edges}
    assert {"key # (say \"hi\" | <b>)", "key *", "fallback (no answer)", "default",
            'caller.number == "+1\\"x" and (vars.get("k", "") in ["a|b", "c;d"])',
            "left 25%", "right 75%", "found", "lookup failed", "busy / no answer"} <= labels


def test_mermaid_uses_generated_ids_so_node_names_cannot_break_the_syntax() -> None:
    text = to_mermaid(NASTY)
    assert not re.search(r"^\s+end\b", text, re.M)
    assert "to-human" not in re.sub(r'"[^"]*"', "", text)  # names only inside quoted labels


# -- Graphviz DOT ------------------------------------------------------------------------


def unescape_dot(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz `dot` is not installed (Debian package graphviz)")
@pytest.mark.parametrize("flow", [NASTY, load_flow_file(DEMO)], ids=["nasty", "demo"])
def test_dot_is_accepted_by_graphviz_and_keeps_every_label(flow: Flow) -> None:
    run = subprocess.run(["dot", "-Tjson"], input=to_dot(flow), capture_output=True, text=True,
                         check=False, timeout=30)
    assert run.returncode == 0 and not run.stderr, run.stderr
    drawn = json.loads(run.stdout)
    objects = drawn["objects"]
    names = [o["name"] for o in objects]
    assert names == ["(start)", *flow.model.nodes]
    boxes, _ = boxes_and_edges(flow)
    assert [unescape_dot(o["label"]).split("\n") for o in objects[1:]] == [list(b.lines)
                                                                           for b in boxes]
    edges = [(names[e["tail"]], names[e["head"]], unescape_dot(e.get("label", "")))
             for e in drawn["edges"]]
    assert sorted(edges) == sorted(expected_edges(flow))  # dot lays edges out in its own order
    human = {o["name"] for o in objects if o.get("fillcolor") == "#ffe0b2"}
    assert human == {n for n, node in flow.model.nodes.items() if node.type in HUMANS}


def test_dot_marks_the_start_and_quotes_every_name() -> None:
    text = to_dot(NASTY)
    assert text.startswith('digraph "nasty" {\n') and text.endswith("}\n")
    assert '    "(start)" -> "end";' in text
    assert '"to-human" -> "bye" [label="busy / no answer"];' in text
    assert r'[label="caller.number == \"+1\\\"x\" and (vars.get(\"k\", \"\")' in text
