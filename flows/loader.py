"""Load a flow file as a checked, immutable, versioned Flow, or refuse it with file:line errors."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from .errors import FlowLoadError, Problem
from .schema import FlowModel
from .schema_base import NodeBase
from .yaml_source import Path, line_for, parse_with_lines


@dataclass(frozen=True)
class Flow:
    """A flow that passed every check. `version` is the content hash calls are pinned to."""

    model: FlowModel
    source: str
    file: str
    lines: dict[Path, int] = field(repr=False, compare=False)
    warnings: tuple[Problem, ...] = ()

    @property
    def name(self) -> str:
        return self.model.flow

    @property
    def version(self) -> str:
        return version_of(self.source)

    @functools.cached_property
    def reads_caller_history(self) -> bool:
        """Whether any template asks how often the caller called before; when none does, the
        server skips counting (a database query on every incoming call)."""
        return bool(_HISTORY.search(self.source))

    def node(self, name: str) -> NodeBase:
        return self.model.nodes[name]  # type: ignore[return-value]

    def line_of(self, node: str, *fields: str | int) -> int:
        return line_for(self.lines, ("nodes", node, *fields))


_HISTORY = re.compile(r"\b(previous_calls|first_time)\b")


def version_of(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def load_flow_file(path: str | FsPath) -> Flow:
    path = FsPath(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowLoadError([Problem(str(path), 1, f"cannot read the file: {exc}")]) from None
    return load_flow_text(text, str(path))


def load_flow_text(text: str, filename: str) -> Flow:
    """Parse, validate and lint; raise FlowLoadError listing every error found."""
    from .lint import lint  # lint needs Flow-independent pieces only; imported late to stay acyclic

    data, lines = parse_with_lines(text, filename)
    if not isinstance(data, dict):
        raise FlowLoadError([Problem(filename, 1, "a flow file is a mapping with flow:, start: "
                                                  "and nodes:")])
    try:
        model = FlowModel.model_validate(data)
    except ValidationError as exc:
        raise FlowLoadError(_schema_problems(exc, data, lines, filename)) from None
    problems = lint(model, lines, filename)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise FlowLoadError(sorted(problems, key=lambda p: p.line))
    return Flow(model=model, source=text, file=filename, lines=lines,
                warnings=tuple(p for p in problems if p.severity != "error"))


def _schema_problems(exc: ValidationError, data: Any, lines: dict[Path, int],
                     filename: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[int, str]] = set()
    for err in exc.errors():
        at = getattr(err.get("ctx", {}).get("error"), "at", ())  # a FieldProblem's exact field
        if err["type"] == "union_tag_invalid":
            at = ("type",)
        loc = _real_path(data, tuple(err["loc"]) + tuple(at))
        message = _describe(err, loc)
        key = (line_for(lines, loc), message)
        if key not in seen:
            seen.add(key)
            problems.append(Problem(filename, key[0], message))
    return sorted(problems, key=lambda p: p.line)


def _real_path(data: Any, loc: tuple[Any, ...]) -> Path:
    """Drop the parts pydantic adds (the union tag, validator names) that are not in the file."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        in_dict = isinstance(cur, dict) and part in cur
        if in_dict or isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and part not in cur \
                and part.replace("_", "").isalnum() and part == loc[-1]:
            out.append(part)  # a missing field: report it on its parent's line
    return tuple(out)


def _describe(err: dict[str, Any], loc: Path) -> str:
    where = _where(loc)
    msg = err["msg"]
    if err["type"] == "missing":
        return f"{where}: missing required field {loc[-1]!r}" if loc else f"missing {msg}"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown field (check the spelling)"
    if err["type"] == "union_tag_invalid":
        kinds = err.get("ctx", {}).get("expected_tags", "")
        tag = err.get("ctx", {}).get("tag", err["input"])
        return f"{where}: unknown node type {tag!r} (expected one of {kinds})"
    if err["type"] == "union_tag_not_found":
        return f"{where}: a node needs a type"
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {msg}"


def _where(loc: Path) -> str:
    if len(loc) >= 2 and loc[0] == "nodes":
        rest = ".".join(str(p) for p in loc[2:])
        return f"node {loc[1]!r}" + (f" {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "flow"
