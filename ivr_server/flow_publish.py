"""Publish or roll back a flow from the admin pages: the same checks as `ivr flows check`,
then an atomic write over the flow's file and an immediate reload.

The file stays the truth (the registry, `ivr flows check` and git all read it), so a
publication is nothing but a checked, atomic edit of it. Calls in progress keep the
version they started on; new calls get the new one as soon as this returns. Publishing
writes the flows directory of this node only: several web nodes need a shared directory
or the same edit deployed to each.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flows.errors import FlowError, FlowLoadError, Problem
from flows.loader import Flow, load_flow_text
from flows.yaml_source import line_for

from .registry import FlowRegistry, UnknownFlow

MAX_SOURCE = 512 * 1024  # characters: a flow file is a few kilobytes


class FlowPublishError(FlowError):
    """A candidate was refused; nothing changed. Names the flow and, per problem, the
    file and line (`file:line: message`), as `ivr flows check` prints them."""

    def __init__(self, flow: str, problems: list[Problem], summary: str | None = None):
        self.flow, self.problems = flow, problems
        self.summary = summary or f"flow {flow!r} was not published"
        super().__init__("\n".join([self.summary + ":", *(str(p) for p in problems)])
                         if problems else self.summary)

    @property
    def file(self) -> str | None:
        return self.problems[0].file if self.problems else None

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None


class StalePublish(FlowPublishError):
    """Someone published since the form was opened: refuse rather than overwrite them."""

    def __init__(self, flow: str, base: str, live: str):
        self.base, self.live = base, live
        super().__init__(flow, [], f"flow {flow!r} was not published: it is live at version "
                                   f"{live} now, not {base} as when you opened the form "
                                   "(someone else published); review their change and "
                                   "publish again")


class NothingToPublish(FlowPublishError):
    """The candidate is the live version already; writing it would change nothing."""

    def __init__(self, flow: str, version: str):
        self.version = version
        super().__init__(flow, [], f"flow {flow!r} is already live at version {version}; "
                                   "nothing to publish")


@dataclass(frozen=True)
class Published:
    flow: Flow  # the new live version, as the registry loaded it
    previous: str | None  # the version live before, if any
    path: Path


def normalise(text: str) -> str:
    """Browsers send a textarea with CRLF line ends; the file (and its hash) use LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def target_file(registry: FlowRegistry, name: str) -> Path:
    path = registry.file_of(name)
    if path is None:
        raise FlowPublishError(name, [], f"flow {name!r} has no file in {registry.directory} "
                                         "to publish over")
    return path


def check(registry: FlowRegistry, name: str, text: str) -> Flow:
    """The full check of a candidate under its real file name, so problems read
    `file:line: message`; also refuse a candidate that names a different flow."""
    path = target_file(registry, name)
    text = normalise(text)
    if len(text) > MAX_SOURCE:
        raise FlowPublishError(name, [Problem(str(path), 1, f"the file is {len(text)} "
                                                            f"characters; at most {MAX_SOURCE}")])
    try:
        flow = load_flow_text(text, str(path))
    except FlowLoadError as exc:
        raise FlowPublishError(name, list(exc.problems)) from None
    if flow.name != name:
        line = line_for(flow.lines, ("flow",))
        raise FlowPublishError(name, [Problem(str(path), line, f"this file says flow: "
                                                               f"{flow.name!r}; you are "
                                                               f"publishing {name!r}")])
    return flow


def publish(registry: FlowRegistry, name: str, text: str, *, base: str | None) -> Published:
    """Check `text`, and if the flow is still live at `base`, make it the live version.

    `base` is the version the editor started from (None skips the comparison: scripts that
    mean to overwrite). Raises FlowPublishError (StalePublish, NothingToPublish) and leaves
    the file untouched when refused."""
    candidate = check(registry, name, text)
    path = target_file(registry, name)
    with _directory_lock(path.parent):
        registry.refresh(force=True)
        previous = registry.live_version(name)
        if base is not None and previous is not None and base != previous:
            raise StalePublish(name, base, previous)
        if candidate.version == previous:
            raise NothingToPublish(name, candidate.version)
        write_atomically(path, candidate.source)
        registry.reload(path)
    live = registry.live_version(name)
    if live != candidate.version:  # checked above, so only a race with a hand edit
        problems = [Problem(str(path), 1, p) for p in registry.problems().get(str(path), ())]
        raise FlowPublishError(name, problems, f"flow {name!r}: the file was written but the "
                                               f"server still serves version {live}")
    return Published(registry.version(name, candidate.version), previous, path)


def rollback(registry: FlowRegistry, name: str, version: str, *,
             base: str | None) -> Published:
    """Republish a stored version: the same check, write and reload as a new edit."""
    try:
        source = registry.version(name, version).source
    except UnknownFlow as exc:
        raise FlowPublishError(name, [], str(exc)) from None
    return publish(registry, name, source, base=base)


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it: a temp file in the same
    folder (not *.yaml, so the registry never loads it), fsync, then os.replace."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """One publication at a time on this node, across threads and worker processes: the
    stale-base comparison and the write must not interleave with another publish."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
