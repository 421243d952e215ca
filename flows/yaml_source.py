"""Parse YAML while remembering the line of every mapping key and list item.

Pydantic reports errors by location (("nodes", "menu", "options", 0, "goto"));
the line map turns that location back into the line ops staff must edit.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import FlowLoadError, Problem

Path = tuple[str | int, ...]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that only composes; construction is done by _build below."""


def parse_with_lines(text: str, filename: str) -> tuple[Any, dict[Path, int]]:
    """Return (data, lines) where lines maps each path in the document to its 1-based line."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise FlowLoadError([Problem(filename, line, f"YAML syntax: {exc.problem}")]) from None
    if root is None:
        raise FlowLoadError([Problem(filename, 1, "the file is empty")])
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    data = _build(root, (), lines, problems, filename)
    if problems:
        raise FlowLoadError(problems)
    return data, lines


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], problems: list[Problem],
           filename: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(filename, line, "a key must be a plain word"))
                continue
            key = _scalar(key_node)
            if not isinstance(key, str | int):
                key = str(key)
            if key in out:
                problems.append(Problem(filename, line, f"duplicate key {key!r}"))
            out[key] = _build(value_node, path + (key,), lines, problems, filename)
            lines[path + (key,)] = line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, problems, filename)
                for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def line_for(lines: dict[Path, int], loc: Path) -> int:
    """The line of the deepest known prefix of loc (errors may name a field that is absent)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1
