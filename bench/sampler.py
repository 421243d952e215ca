"""A CPU-time sampling profiler for one gunicorn worker (`./dev bench --profile`).

Why not cProfile: it measures wall time, so a webhook waiting for Redis looks expensive
when it costs no CPU, and its per-call overhead inflates the many small calls a webhook
makes. Here the kernel sends SIGPROF after every `interval` seconds of this process's CPU
time (ITIMER_PROF: user + system, all threads) and the handler records the main thread's
stack. With sync workers a request runs on the main thread, so samples in it are that
request's CPU; samples landing while the main thread waits for a connection are CPU used by
the process's other threads (the call-log writer) or by waking up.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path
from types import FrameType

SITE = "site-packages/"


def where(frame: FrameType) -> str:
    """'module/path.py:function', short enough to read and to match in the report."""
    name = frame.f_code.co_filename
    cut = name.rfind(SITE)
    if cut >= 0:
        name = name[cut + len(SITE):]
    elif "/lib/python3" in name:
        name = "stdlib/" + name.rsplit("/", 1)[-1]
    else:
        name = name.rsplit("/", 2)[-2] + "/" + name.rsplit("/", 1)[-1] if "/" in name else name
    return f"{name}:{frame.f_code.co_name}"


class CpuSampler:
    """Counts the main thread's stacks, one per `interval` seconds of process CPU."""

    def __init__(self, interval: float = 0.001):
        self.interval = interval
        self.stacks: Counter[tuple[str, ...]] = Counter()
        self.requests = 0

    def start(self) -> CpuSampler:
        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        stack = []
        while frame is not None:
            stack.append(where(frame))
            frame = frame.f_back
        stack.reverse()
        self.stacks[tuple(stack)] += 1

    def dump(self, directory: Path) -> None:
        """Write this worker's samples so far (replaced on each dump, so a worker stopped by
        SIGTERM leaves its last dump behind)."""
        path = directory / f"worker-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"interval": self.interval, "requests": self.requests,
                                   "stacks": [[list(k), n] for k, n in self.stacks.items()]}))
        tmp.replace(path)
