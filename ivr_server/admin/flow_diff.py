"""A unified diff of two flow sources as structured lines, so the template can colour and
number them without parsing diff text. Pure: no Flask, no files."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "hunk", "add", "del" or "same"
    text: str  # the line without its +/-/space marker (the whole header for a hunk)
    old: int | None = None  # line number in the first source
    new: int | None = None  # line number in the second source


@dataclass(frozen=True)
class Diff:
    lines: tuple[DiffLine, ...]

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "add")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "del")

    @property
    def same(self) -> bool:
        return not self.lines


def diff_sources(old: str, new: str, *, context: int = 3) -> Diff:
    """Hunks of `new` against `old`, with `context` unchanged lines around each change."""
    raw = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=context)
    out: list[DiffLine] = []
    old_no = new_no = 0
    for text in raw:
        if text.startswith(("---", "+++")) and not out:
            continue  # the two file headers; later lines that look alike are content
        match = _HUNK.match(text)
        if match:
            old_no, new_no = int(match.group(1)), int(match.group(2))
            out.append(DiffLine("hunk", text))
        elif text.startswith("+"):
            out.append(DiffLine("add", text[1:], None, new_no))
            new_no += 1
        elif text.startswith("-"):
            out.append(DiffLine("del", text[1:], old_no, None))
            old_no += 1
        else:
            out.append(DiffLine("same", text[1:], old_no, new_no))
            old_no, new_no = old_no + 1, new_no + 1
    return Diff(tuple(out))
