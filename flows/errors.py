"""Errors of the flow language, each naming the file, line, flow and node involved."""

from __future__ import annotations

from dataclasses import dataclass


class FlowError(Exception):
    """Base of every error raised by the flows package."""


@dataclass(frozen=True)
class Problem:
    """One finding about a flow file: where it is and what is wrong."""

    file: str
    line: int
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}: {tag}{self.message}"


class FlowLoadError(FlowError):
    """A flow file could not be loaded; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FlowRuntimeError(FlowError):
    """The engine could not run a node of a loaded flow (a template failed, a variable is wrong)."""

    def __init__(self, flow: str, node: str, message: str, line: int | None = None):
        self.flow, self.node, self.line = flow, node, line
        where = f"flow {flow!r}, node {node!r}"
        if line:
            where += f" (line {line})"
        super().__init__(f"{where}: {message}")


class FlowTestFailure(FlowError):
    """A scripted flow test did not hear or reach what it expected."""
