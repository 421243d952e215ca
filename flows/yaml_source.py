"""Parse YAML while remembering the line of every mapping key and list item.

Pydantic reports errors by location (("nodes", "menu", "options", 0, "goto"));
the line map turns that location back into the line ops staff must edit.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import FlowLoadError, Problem

Path = tuple[str | int, ...]
MAX_VALUES = 50_000  # far above any real flow; stops alias bombs ("billion laughs")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that only composes; construction is done by _build below."""


def parse_with_lines(text: str, filename: str) -> tuple[Any, dict[Path, int]]:
    """Return (data, lines) where lines maps each path in the document to its 1-based line."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        raise FlowLoadError([_syntax_problem(exc, text, filename)]) from None
    if root is None:
        raise FlowLoadError([Problem(filename, 1, "the file is empty")])
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    try:
        data = _build(root, (), lines, problems, filename, set(), [0])
    except _TooBig as exc:
        problems.append(Problem(filename, exc.line, f"the file expands to more than {MAX_VALUES} "
                                                    "values (aliases repeated too often)"))
    if problems:
        raise FlowLoadError(problems)
    return data, lines


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, filename: str) -> Problem:
    """Blame the line to edit: where an unclosed [, { or quote opened, else where YAML gave up."""
    mark = exc.problem_mark or exc.context_mark
    opened = exc.context_mark and exc.context and ("flow" in exc.context or "quoted" in exc.context)
    if opened:
        mark = exc.context_mark
    line = mark.line + 1 if mark else 1
    message = f"YAML syntax: {exc.problem}"
    if opened and exc.problem_mark and exc.problem_mark.line + 1 != line:
        what = "quoted text" if "quoted" in str(exc.context) else "[ or {"
        message += f" on line {exc.problem_mark.line + 1}: the {what} opened here is not closed"
    source = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
    if "{{" in source or "{%" in source:
        message += "; a value containing {{ or {% must be quoted"
    return Problem(filename, line, message)


class _TooBig(Exception):
    def __init__(self, line: int):
        self.line = line


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], problems: list[Problem],
           filename: str, active: set[int], count: list[int]) -> Any:
    """Plain data from a composed node; `active` holds the nodes being built (alias loops)."""
    line = node.start_mark.line + 1
    lines.setdefault(path, line)
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise _TooBig(line)
    if id(node) in active:
        problems.append(Problem(filename, line, "an alias refers to the value that contains it"))
        return None
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        active.add(id(node))
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(filename, line, "a key must be a plain word (a value "
                                                        "starting with {{ must be quoted)"))
                continue
            key = _scalar(key_node, problems, filename)
            if not isinstance(key, str | int):
                key = str(key)
            if key in out:
                problems.append(Problem(filename, line, f"duplicate key {key!r}"))
            out[key] = _build(value_node, path + (key,), lines, problems, filename, active, count)
            lines[path + (key,)] = line
        active.discard(id(node))
        return out
    if isinstance(node, yaml.SequenceNode):
        active.add(id(node))
        items = [_build(item, path + (i,), lines, problems, filename, active, count)
                 for i, item in enumerate(node.value)]
        active.discard(id(node))
        return items
    return _scalar(node, problems, filename)


def _scalar(node: yaml.Node, problems: list[Problem], filename: str) -> Any:
    """A scalar's value; a tag or value YAML cannot construct (!!python/..., <<, 2026-13-01)
    becomes a problem on its line instead of a crash."""
    if node.tag.endswith(":merge"):
        problems.append(Problem(filename, node.start_mark.line + 1,
                                "merge keys (<<) are not supported: write the fields out"))
        return "<<"
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(filename, node.start_mark.line + 1,
                                f"cannot read {node.value!r}: {reason}"))
        return None
    finally:
        loader.dispose()


def line_for(lines: dict[Path, int], loc: Path) -> int:
    """The line of the deepest known prefix of loc (errors may name a field that is absent)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1
