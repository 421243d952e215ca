"""Memory and CPU of every process the load bench runs, read from /proc.

Why: on a 2-core machine the server, the RQ worker, Redis, PostgreSQL, Prism and the
simulated callers all share the CPUs; the report says what each took, so a figure that the
client or Prism depressed is not blamed on the server. Processes are named by role
(gunicorn master, worker N, rq worker, redis-server, ...), found from the pids we started.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    ticks: int  # user + system CPU ticks so far
    rss_kb: int
    start: int  # start time in ticks since boot: tells a reused pid apart


def read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    comm = stat[stat.find("(") + 1:stat.rfind(")")]
    f = stat[stat.rfind(")") + 2:].split()
    rss = next((int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmRSS:")), 0)
    return Proc(pid, int(f[1]), comm, int(f[11]) + int(f[12]), rss, int(f[19]))


def all_procs() -> list[Proc]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (p := read(int(entry.name))) is not None:
            out.append(p)
    return out


def descendants(root: int, procs: Iterable[Proc]) -> list[Proc]:
    """`root` and every process below it (a gunicorn master and its workers, an RQ worker and
    its scheduler), root first."""
    procs = list(procs)
    children: dict[int, list[Proc]] = {}
    by_pid = {p.pid: p for p in procs}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    out, todo = [], [by_pid[root]] if root in by_pid else []
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(sorted(children.get(p.pid, []), key=lambda c: c.pid))
    return out


def thread_ticks(native_ids: Iterable[int]) -> int:
    """CPU ticks of some threads of this process (the simulated callers' pool)."""
    total = 0
    for tid in native_ids:
        try:
            f = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
    return total


@dataclass(frozen=True)
class Role:
    """Processes of one kind: `roots` and everything below them. `child` names the
    processes below a root ("gunicorn worker"); `together` sums a tree into one row
    (PostgreSQL's backends, whose RSS counts shared buffers again in each)."""

    roots: tuple[int, ...]
    child: str = ""
    together: bool = False
    alone: bool = False  # the root only (this process: its children have roles of their own)
    no_rss: bool = False  # CPU only (PostgreSQL: each backend's RSS counts shared memory)


Roles = Callable[[], dict[str, Role]]


@dataclass(frozen=True)
class Mark:
    """CPU ticks of every named process at one moment."""

    at: float
    ticks: dict[str, dict[tuple[int, int], int]]  # row name -> (pid, start) -> ticks


@dataclass
class Sampler:
    """Samples the RSS of each role's processes every `every` seconds between `begin()` and
    `end()` (peak and last); `mark()` takes their CPU ticks, and `cpu(a, b)` is what each
    used between two marks. `roles` is asked each time (workers can be replaced)."""

    roles: Roles
    every: float = 2.0
    peak_kb: dict[str, int] = field(default_factory=dict)
    last_kb: dict[str, int] = field(default_factory=dict)
    no_rss: set[str] = field(default_factory=set)  # rows whose RSS would mislead
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def label(self) -> dict[str, list[Proc]]:
        """Row name -> its processes: a root under its role's name, the processes below it
        as '<child> N', or the whole tree in one row (`together`)."""
        procs = all_procs()
        named: dict[str, list[Proc]] = {}
        for role, spec in self.roles().items():
            for root in spec.roots:
                tree = descendants(root, procs)
                tree = tree[:1] if spec.alone else tree
                if not tree:
                    continue
                own = f"{role} (pid {root})" if len(spec.roots) > 1 else role
                if spec.together:
                    named.setdefault(role, []).extend(tree)
                    if spec.no_rss:
                        self.no_rss.add(role)
                    continue
                named[own] = [tree[0]]
                for i, p in enumerate(tree[1:], 1):
                    named[f"{spec.child or role + ' child'} {i}"] = [p]
        return named

    def sample(self) -> dict[str, list[Proc]]:
        named = self.label()
        with self._lock:
            for name, ps in named.items():
                kb = sum(p.rss_kb for p in ps)
                self.last_kb[name] = kb
                self.peak_kb[name] = max(self.peak_kb.get(name, 0), kb)
        return named

    def mark(self) -> Mark:
        named = self.sample()
        return Mark(time.monotonic(), {name: {(p.pid, p.start): p.ticks for p in ps}
                                       for name, ps in named.items()})

    @staticmethod
    def cpu(a: Mark, b: Mark) -> dict[str, float]:
        """CPU of each row between two marks, as % of one core (a process that exited in
        between is not counted; one that started counts from its start)."""
        seconds = max(1e-9, b.at - a.at)
        out = {}
        for name, procs in b.ticks.items():
            before = a.ticks.get(name, {})
            used = sum(t - before.get(key, 0) for key, t in procs.items())
            out[name] = round(used / HZ / seconds * 100, 1)
        return out

    def begin(self) -> None:
        self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def memory_mb(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {"peak_mb": {k: round(v / 1024, 1) for k, v in self.peak_kb.items()
                                if k not in self.no_rss},
                    "last_mb": {k: round(v / 1024, 1) for k, v in self.last_kb.items()
                                if k not in self.no_rss}}
