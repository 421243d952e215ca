"""A picture of a flow (Mermaid or Graphviz DOT), so ops staff and reviewers can see a file's
paths, especially which ones end at a human, without reading YAML."""

from __future__ import annotations

from dataclasses import dataclass

from .loader import Flow
from .nodes import (
    AgentLineNode,
    CollectNode,
    EnqueueNode,
    HangupNode,
    HttpNode,
    MenuNode,
    PlayNode,
    SayNode,
    SetNode,
    SplitNode,
    SwitchNode,
    TransferNode,
)
from .schema_base import NodeBase

SHORT = 40  # characters of a prompt or URL shown inside a box
CONDITION = 80  # characters of a switch condition shown on an edge


@dataclass(frozen=True)
class Box:
    name: str
    kind: str
    lines: tuple[str, ...]  # name first, then the kind, then details

    @property
    def human(self) -> bool:
        return self.kind in ("transfer", "enqueue")


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: str  # "" for the plain next step


def boxes_and_edges(flow: Flow) -> tuple[list[Box], list[Edge]]:
    """The drawing, independent of the output format."""
    boxes: list[Box] = []
    edges: list[Edge] = []
    for name, node in flow.model.nodes.items():
        boxes.append(Box(name, node.type, (name, *_describe(node))))
        edges.extend(Edge(name, dst, label) for label, dst in _edges(node))
    return boxes, edges


def _describe(node: NodeBase) -> list[str]:
    if isinstance(node, SayNode):
        return ["say", _short(node.text)]
    if isinstance(node, PlayNode):
        return ["play", _short(node.url)]
    if isinstance(node, MenuNode):
        keys = ", ".join(f"{o.key} {o.label}" if o.label else o.key for o in node.options)
        return ["menu", f"keys: {keys}"]
    if isinstance(node, CollectNode):
        n = (str(node.min_digits) if node.min_digits == node.max_digits
             else f"{node.min_digits}-{node.max_digits}")
        checks = [c for c in (node.validate_as, node.pattern and f"pattern {node.pattern}") if c]
        return ["collect", _short(", ".join([f"{n} digits -> {node.save_as}", *checks]))]
    if isinstance(node, HttpNode):
        return ["http lookup", _short(f"{node.method} {node.url}")]
    if isinstance(node, SetNode):
        return ["set", _short(", ".join(node.vars))]
    if isinstance(node, TransferNode):
        return ["transfer (human)", f"to {_short(node.to)}"]
    if isinstance(node, HangupNode):
        return ["hangup", f"outcome {node.outcome or 'self-served'}"]
    if isinstance(node, EnqueueNode):
        return ["enqueue (human)", f"queue {_short(node.queue)}"]
    if isinstance(node, AgentLineNode):
        return ["agent line", f"takes callers from {_short(node.queue)}"]
    return [node.type]  # type: ignore[attr-defined]  # switch, split: details are on the edges


def _edges(node: NodeBase) -> list[tuple[str, str]]:
    """(label, target) for every way out of a node, named by what takes it."""
    if isinstance(node, MenuNode):
        return [(f"key {o.key}" + (f" ({o.label})" if o.label else ""), o.goto)
                for o in node.options] + [("fallback (no answer)", node.fallback)]
    if isinstance(node, CollectNode):
        return [("valid entry", node.next), ("fallback (no valid entry)", node.fallback)]
    if isinstance(node, SwitchNode):
        return [(_short(c.when, CONDITION), c.goto) for c in node.cases] + [
            ("default", node.default)]
    if isinstance(node, HttpNode):
        return [("found", node.next), ("lookup failed", node.on_failure)]
    if isinstance(node, SplitNode):
        return [(f"{b.name} {b.share}%", b.goto) for b in node.branches]
    if isinstance(node, TransferNode):
        return [("busy / no answer", node.on_failure)] if node.on_failure else []
    if isinstance(node, EnqueueNode):
        return ([("after the agent", node.next)] if node.next else []) + [
            ("queue full / waited too long", node.fallback)] + (
            [("asked for a call back", node.callback)] if node.callback else [])
    return [("", target) for _, target in node.targets()]


def _short(text: str, limit: int = SHORT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


# -- Mermaid -----------------------------------------------------------------------------

_MERMAID_SHAPES = {  # kind -> (open, close); labels are always quoted inside
    "say": ("(", ")"), "play": ("(", ")"), "set": ("(", ")"),
    "menu": ("[", "]"), "collect": ("[", "]"),
    "switch": ("{", "}"), "split": ("{{", "}}"), "http": ("[(", ")]"),
    "transfer": ("[[", "]]"), "enqueue": ("[[", "]]"), "hangup": ("([", "])"),
}
# Mermaid entity codes; one pass per character so an inserted '#' or ';' is never re-escaped.
_MERMAID_ESCAPES = {'"': "#quot;", "#": "#35;", "<": "#lt;", ">": "#gt;", "&": "#amp;",
                    "|": "#124;", "`": "#96;", ";": "#59;", "\\": "#92;"}


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label."""
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def to_mermaid(flow: Flow) -> str:
    """A `flowchart TD` diagram; node ids are n1.. so names like `end` cannot clash."""
    boxes, edges = boxes_and_edges(flow)
    ids = {b.name: f"n{i}" for i, b in enumerate(boxes, 1)}
    out = ["flowchart TD", f"    %% flow {mermaid_text(flow.name)} version {flow.version}",
           '    entry(("start")):::start']
    for b in boxes:
        left, right = _MERMAID_SHAPES.get(b.kind, ("[", "]"))
        label = "<br/>".join(mermaid_text(line) for line in b.lines)
        out.append(f'    {ids[b.name]}{left}"{label}"{right}')
    out.append(f"    entry --> {ids[flow.model.start]}")
    for e in edges:
        arrow = f'-->|"{mermaid_text(e.label)}"|' if e.label else "-->"
        out.append(f"    {ids[e.src]} {arrow} {ids[e.dst]}")
    out.append("    classDef start fill:#222,stroke:#222,color:#fff")
    out.append("    classDef human fill:#ffe0b2,stroke:#e65100,stroke-width:3px")
    humans = [ids[b.name] for b in boxes if b.human]
    if humans:
        out.append(f"    class {','.join(humans)} human")
    return "\n".join(out) + "\n"


# -- Graphviz DOT ------------------------------------------------------------------------

_DOT_SHAPES = {
    "say": 'shape=box, style="rounded"', "play": 'shape=box, style="rounded"',
    "set": 'shape=box, style="rounded,dashed"',
    "menu": "shape=box", "collect": "shape=box",
    "switch": "shape=diamond", "split": "shape=hexagon", "http": "shape=cylinder",
    "transfer": 'shape=box, style="filled,bold", fillcolor="#ffe0b2", color="#e65100", '
                "penwidth=2",
    "hangup": 'shape=box, style="rounded,filled", fillcolor="#eeeeee"',
}
_DOT_SHAPES["enqueue"] = _DOT_SHAPES["transfer"]


def dot_text(text: str) -> str:
    """A DOT double-quoted string; backslashes are doubled so \\n or \\l in text stay literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def to_dot(flow: Flow) -> str:
    """A Graphviz digraph; the start marker's id "(start)" cannot be a node name."""
    boxes, edges = boxes_and_edges(flow)
    out = [f"digraph {dot_text(flow.name)} {{",
           f"    label={dot_text(f'flow {flow.name} version {flow.version}')};",
           '    labelloc=t; fontname="Helvetica";',
           '    node [fontname="Helvetica", fontsize=11];',
           '    edge [fontname="Helvetica", fontsize=10];',
           '    "(start)" [shape=circle, label="start", style=filled, fillcolor="#222222", '
           'fontcolor=white];']
    for b in boxes:
        label = "\\n".join(dot_text(line)[1:-1] for line in b.lines)
        out.append(f'    {dot_text(b.name)} [label="{label}", '
                   f'{_DOT_SHAPES.get(b.kind, "shape=box")}];')
    out.append(f'    "(start)" -> {dot_text(flow.model.start)};')
    for e in edges:
        attrs = f" [label={dot_text(e.label)}]" if e.label else ""
        out.append(f"    {dot_text(e.src)} -> {dot_text(e.dst)}{attrs};")
    out.append("}")
    return "\n".join(out) + "\n"
