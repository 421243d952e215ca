"""Checks beyond the schema: references, reachability, loops, a way to a human, templates."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .errors import Problem
from .schema import HUMAN_NODE_TYPES, FlowModel
from .schema_base import NodeBase, Prompt, Strict
from .templates import check_expression, check_template
from .yaml_source import Path, line_for

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
TARGET = re.compile(r"^(\+[1-9]\d{6,14}|sip:[^\s@]+@[^\s]+|client:[A-Za-z0-9_\-.]+)$")
HOURS_CALL = re.compile(r"in_hours\(\s*['\"]([^'\"]*)['\"]\s*\)")


def lint(model: FlowModel, lines: dict[Path, int], filename: str) -> list[Problem]:
    out: list[Problem] = []

    def report(loc: Path, message: str, severity: str = "error") -> None:
        out.append(Problem(filename, line_for(lines, loc), message, severity))

    nodes: dict[str, NodeBase] = dict(model.nodes)  # type: ignore[arg-type]
    if model.start not in nodes:
        report(("start",), f"start node {model.start!r} is not defined")
    for name, node in nodes.items():
        for field, target in node.targets():
            if target not in nodes:
                report(_field_loc(name, node, field), f"node {name!r} {field} goes to unknown node "
                                                f"{target!r}")
    if model.callbacks is not None and model.callbacks.start not in nodes:
        report(("callbacks", "start"),
               f"callbacks start node {model.callbacks.start!r} is not defined")
    for name, node in nodes.items():
        offer = getattr(node, "offer_callback", None)
        if offer is not None and not node.callback:  # type: ignore[attr-defined]
            report(("nodes", name, "offer_callback"), f"node {name!r} offers a call back but "
                   "has no `callback` node to book it")
        if offer is not None and offer.words and model.speech != "stream":
            report(("nodes", name, "offer_callback", "words"),
                   f"node {name!r}: offer_callback words are heard only with `speech: "
                   "stream` (Twilio cannot record on hold); callers can press the key",
                   "warning")
    if model.human and not TARGET.match(model.human):
        report(("human",), f"human {model.human!r} is not an E.164 number, sip: or client: target")
    _reachability(model, nodes, report)
    _loops_without_waiting(nodes, report)
    _menus_reach_a_human(nodes, report)
    _templates(model, nodes, report)
    return out


def _field_loc(name: str, node: NodeBase, field: str) -> Path:
    """Where a reference is written: options[1] is the goto of the option with key 1,
    cases[0] the first case, branches[a] the branch named a; else the field itself."""
    head, _, inner = field.partition("[")
    inner = inner.rstrip("]")
    attr = {"options": "key", "branches": "name"}.get(head)  # cases are counted from 0
    items = getattr(node, head, None) if inner else None
    for i, item in enumerate(items or []):
        if (getattr(item, attr) if attr else str(i)) == inner:
            return ("nodes", name, head, i, "goto")
    return ("nodes", name, head)


def graph_edges(nodes: dict[str, NodeBase]) -> dict[str, list[str]]:
    return {name: [t for _, t in node.targets() if t in nodes] for name, node in nodes.items()}


def _reachability(model: FlowModel, nodes: dict[str, NodeBase], report) -> None:  # noqa: ANN001
    if model.start not in nodes:
        return
    edges = graph_edges(nodes)
    starts = [model.start] + ([model.callbacks.start] if model.callbacks is not None
                              and model.callbacks.start in nodes else [])
    seen = _reachable_from(starts, edges)
    for name in nodes:
        if name not in seen:
            report(("nodes", name), f"node {name!r} is unreachable from start {model.start!r}",
                   "warning")


def _reachable_from(starts: list[str], edges: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        cur = todo.pop()
        if cur in seen or cur not in edges:
            continue
        seen.add(cur)
        todo.extend(edges[cur])
    return seen


def _loops_without_waiting(nodes: dict[str, NodeBase], report) -> None:  # noqa: ANN001
    """A cycle made only of nodes that never wait for the caller would spin forever."""
    edges = {n: [t for t in ts if not nodes[t].waits_for_caller()]
             for n, ts in graph_edges(nodes).items() if not nodes[n].waits_for_caller()}
    color: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(start: str) -> None:
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        path = [start]
        color[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                path.pop()
            elif color.get(nxt) == 1:
                cycle = path[path.index(nxt):]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    shown = " -> ".join([*cycle, nxt])
                    report(("nodes", nxt), f"loop that never waits for the caller: {shown}")
            elif nxt not in color:
                color[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(edges[nxt])))

    for name in edges:
        if name not in color:
            visit(name)


def _menus_reach_a_human(nodes: dict[str, NodeBase], report) -> None:  # noqa: ANN001
    edges = graph_edges(nodes)
    for name, node in nodes.items():
        if node.type != "menu" or getattr(node, "allow_no_human", False):  # type: ignore[attr-defined]
            continue
        reach = _reachable_from([t for _, t in node.targets() if t in nodes], edges)
        if not any(nodes[n].type in HUMAN_NODE_TYPES for n in reach):  # type: ignore[attr-defined]
            report(("nodes", name), f"menu {name!r} has no path to a human in its options or "
                                    "fallback (add one, or set allow_no_human: true)")


def _templates(model: FlowModel, nodes: dict[str, NodeBase], report) -> None:  # noqa: ANN001
    for name, node in nodes.items():
        for loc, text, is_condition in _texts(name, node):
            problem = check_expression(text) if is_condition else check_template(text)
            if problem:
                report(loc, f"node {name!r}: {problem}")
            for hours in HOURS_CALL.findall(text):
                if hours not in model.hours:
                    report(loc, f"node {name!r}: no hours named {hours!r} (defined: "
                                f"{', '.join(sorted(model.hours)) or 'none'})")
        target = getattr(node, "to", None)
        if node.type == "transfer" and target and "{" not in target and not TARGET.match(target):
            report(("nodes", name, "to"), f"node {name!r}: {target!r} is not an E.164 number "
                                          "(+15551234567), sip:user@host or client:name")


def _texts(name: str, node: NodeBase) -> Iterator[tuple[Path, str, bool]]:
    """(location, text, is_condition) for every template and condition in a node."""
    base: Path = ("nodes", name)
    for field, value in node:
        if field in ("type", "description"):
            continue
        if field == "cases":
            for i, case in enumerate(value):
                yield (*base, "cases", i, "when"), case.when, True
        elif isinstance(value, str) and field not in ("next", "fallback", "on_failure", "default",
                                                      "save_as", "method", "pattern",
                                                      "validate_as"):
            yield (*base, field), value, False
        elif isinstance(value, list) and value and isinstance(value[0], Prompt):
            for i, prompt in enumerate(value):
                for text in (prompt.say, prompt.play):
                    if text:
                        yield (*base, field, i), text, False
        elif isinstance(value, dict):
            yield from _nested((*base, field), value)
        elif isinstance(value, Strict):  # a nested block such as an enqueue's announce
            for sub, text in value:
                if isinstance(text, str):
                    yield (*base, field, sub), text, False


def _nested(loc: Path, value: object) -> Iterator[tuple[Path, str, bool]]:
    if isinstance(value, str):
        yield loc, value, False
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nested((*loc, k), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nested((*loc, i), v)
