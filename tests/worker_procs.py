"""Killing an RQ worker the hard way, as a crashed machine would, for the fault tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def kill_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and anything it started (it forks nothing today; should it again,
    a child in a session of its own is found by its parent)."""
    for pid in [*children(worker.pid), worker.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait(10)


def children(parent: int) -> list[int]:
    """The processes whose parent is `parent` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found
