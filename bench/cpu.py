"""CPU used during a measurement by processes that are not part of the benchmark.

Why: on a shared 2-core machine someone's test run can take half the CPU and halve the
IVR's numbers; the report says so instead of letting the numbers mislead.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SUT_COMMANDS = ("redis-server", "postgres")  # the backing services, when external

Snapshot = dict[int, tuple[str, int, int]]  # pid -> (command, parent pid, CPU ticks)


def snapshot() -> Snapshot:
    out: Snapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1:text.rfind(")")]
        fields = text[text.rfind(")") + 2:].split()
        out[int(entry.name)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
    return out


def _tree(snap: Snapshot, root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in snap.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class Meter:
    """Start before a phase, `foreign()` after it: the CPU of other processes, of the backing
    services (Redis, PostgreSQL), and the hypervisor's steal during the phase."""

    start: Snapshot
    started: float
    stat: list[int]
    services: frozenset[int]  # embedded Redis pid; empty: services found by command name

    @classmethod
    def begin(cls, services: frozenset[int] = frozenset()) -> Meter:
        return cls(snapshot(), time.monotonic(), _proc_stat(), services)

    def _is_service(self, pid: int, comm: str) -> bool:
        return pid in self.services if self.services else comm.startswith(SUT_COMMANDS)

    def foreign(self) -> dict[str, object]:
        end, elapsed = snapshot(), time.monotonic() - self.started
        ours = _tree(end, os.getpid()) | _tree(self.start, os.getpid())
        ticks: Counter[str] = Counter()
        service_ticks = 0
        for pid, (comm, _, cpu) in end.items():
            used = cpu - self.start.get(pid, ("", 0, 0))[2]
            if self._is_service(pid, comm):
                service_ticks += used
            elif pid not in ours:
                ticks[comm] += used
        hz, cpus = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
        share = sum(ticks.values()) / hz / elapsed / cpus * 100
        top = [f"{comm} {t / hz / elapsed * 100:.0f}%" for comm, t in ticks.most_common(2) if t]
        delta = [b - a for a, b in zip(self.stat, _proc_stat(), strict=True)]
        # steal: time the hypervisor gave our virtual CPUs to someone else.
        steal = delta[7] / sum(delta) * 100 if len(delta) > 7 and sum(delta) else 0.0
        return {"percent_of_all_cpus": round(share, 1), "top": top, "steal": round(steal, 1),
                "services_cpu_s": round(service_ticks / hz, 2)}


def _proc_stat() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]
