"""What `python -m bench.callbacks` runs against: Twilio's contract mock (Prism, as the tests
start it) behind a journal of placed calls, a database and Redis of the run's own, and a
pool of `ivr worker` processes that a killer thread SIGKILLs at random.

Why a module of its own: every process started here must be stopped on every way out, so
each is a context manager (or has a stop()) the runner stacks; and the arrival time of each
Calls.create is taken here, where Twilio would see it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import phonenumbers
from _pytest.outcomes import Failed

from bench.servers import ROOT, BenchError, service_tables, toml_str
from ivr_server.config import ENV_OVERRIDES
from ivr_server.simulator.calls_api import CallsApi
from tests.prism import TwilioApiMock, node_packages, running_mock

ACCOUNT_SID = "AC" + "c0ffee00" * 4
AUTH_TOKEN = "bench-callbacks-token-00000000000"
FROM_NUMBER = "+15005550006"
PUBLIC_URL = "https://ivr.example.test"


@contextmanager
def twilio_mock(workdir: Path) -> Iterator[TwilioApiMock]:
    """Prism serving Twilio's tightened spec, with tests/prism.py's recording proxy."""
    try:
        node_packages()
        with running_mock(workdir, tune=quiet_resets) as mock:
            yield mock
    except Failed as exc:
        raise BenchError(str(exc)) from None


def quiet_resets(server: ThreadingHTTPServer) -> None:
    """No traceback on stderr for a connection reset: that is a worker being killed."""
    report = server.handle_error

    def handle_error(request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    server.handle_error = handle_error  # type: ignore[method-assign]


@dataclass(frozen=True)
class Arrival:
    """One Calls.create as it reached "Twilio": when, for which callback and attempt."""

    at: float
    callback_id: int | None
    token: str
    status: int
    sid: str | None


class TimedCallsApi(CallsApi):
    """CallsApi that also keeps the arrival time of every create (before Prism's answer)."""

    def __init__(self, upstream: str):
        super().__init__(upstream)
        self.arrivals: list[Arrival] = []
        self._arrivals_lock = threading.Lock()

    def start(self) -> TimedCallsApi:
        super().start()
        assert self._server is not None
        quiet_resets(self._server)  # CallsApi's handler already sets TCP_NODELAY
        return self

    def create(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        at = time.time()
        form = parse_qs(body.decode("utf-8", "replace"))
        query = parse_qs(urlsplit((form.get("Url") or [""])[-1]).query)
        raw_id, token = (query.get("cb") or [""])[0], (query.get("token") or [""])[0]
        status, reply, kind = super().create(path, body, headers)
        sid = json.loads(reply).get("sid") if status == 201 else None
        with self._arrivals_lock:
            self.arrivals.append(Arrival(at, int(raw_id) if raw_id.isdigit() else None, token,
                                         status, sid))
        return status, reply, kind

    def timed(self) -> list[Arrival]:
        with self._arrivals_lock:
            return list(self.arrivals)


def us_numbers(count: int, seed: int) -> list[str]:
    """`count` distinct valid Manhattan numbers (+1 212 NXX XXXX), in a seeded order."""
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < count:
        number = f"+1212{rng.randrange(200, 1000)}{rng.randrange(10000):04d}"
        if number not in seen and phonenumbers.is_valid_number(phonenumbers.parse(number)):
            seen.add(number)
            out.append(number)
    return out


def write_config(path: Path, *, redis_url: str, prefix: str, database_url: str,
                 api_base_url: str) -> Path:
    """The workers' config.toml: every setting they need, nothing from the environment."""
    q = toml_str
    path.write_text(f"""\
[server]
public_base_url = {q(PUBLIC_URL)}
instance_path = {q(str(path.parent / "instance"))}

{service_tables(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=api_base_url,
                redis_url=redis_url, prefix=prefix, database_url=database_url)}
[flows]
directory = {q(str(ROOT / "flows" / "examples"))}

[callbacks]
from_number = {q(FROM_NUMBER)}
callee_hours = "00:00-24:00"
dial_grace = 5
reconcile_interval = 2
ring_timeout = 25

[callbacks.business_hours]
""", encoding="utf-8")
    return path


def worker_command() -> list[str]:
    ivr = Path(sys.executable).parent / "ivr"
    return [str(ivr), "worker"] if ivr.exists() else [sys.executable, "-m", "ivr_server.cli",
                                                      "worker"]


@dataclass
class Kill:
    at: float
    pid: int


@dataclass
class WorkerPool:
    """`size` `ivr worker` processes, each in a process group of its own. A kill takes the
    worker and anything it started (it forks nothing: jobs run in it, and every worker moves
    due jobs itself), as a crash of the machine or container would."""

    config_file: Path
    logs: Path
    size: int = 2
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
        return {**env, "IVR_CONFIG": str(self.config_file), "PYTHONUNBUFFERED": "1"}

    def spawn(self) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"worker-{len(self.started) + 1:03d}.log").open("wb") as out:
            proc = subprocess.Popen(worker_command(), cwd=self.config_file.parent,
                                    env=self.env(), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(proc)
        return proc

    def start(self) -> None:
        with self._lock:
            self.procs = [self.spawn() for _ in range(self.size)]

    def kill_one(self, rng: random.Random) -> Kill:
        """SIGKILL one worker at random and start its replacement at once."""
        with self._lock:
            victim = rng.choice(self.procs)
            kids = _kill_tree(victim.pid)
            victim.wait()
            for kid in kids:
                _reap(kid)
            self.procs[self.procs.index(victim)] = self.spawn()
            kill = Kill(time.time(), victim.pid)
            self.kills.append(kill)
            return kill

    def stop(self) -> None:
        """SIGTERM (RQ's warm shutdown) to the workers running, then SIGKILL to stragglers
        and their children."""
        with self._lock:
            for proc in self.procs:
                _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            for proc in self.procs:
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            for proc in self.procs:
                if proc.poll() is None:
                    kids = _kill_tree(proc.pid)
                    proc.wait(timeout=10)
                    for kid in kids:
                        _reap(kid)
            self.procs = []

    def log_text(self) -> str:
        return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                         for p in sorted(self.logs.glob("worker-*.log")))


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat from the field after the command: state, ppid, pgrp, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").glob("[0-9]*"):
        with suppress(OSError, IndexError, ValueError):
            if int(_proc_stat(int(entry.name))[1]) == pid:
                kids.append(int(entry.name))
    return kids


def become_subreaper() -> None:
    """Orphans of the workers we kill become our children (not init's, which in a container
    may never reap them), so we can reap them."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def _reap(pid: int) -> None:
    with suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a worker with its process group and its children (should a version of it fork
    again, in a group of their own). Stopped first, so it forks nothing meanwhile. Returns
    the children killed, to reap once the worker is reaped (they are ours then)."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
    kids = _children(pid)
    _signal_group(pid, signal.SIGKILL)
    for kid in kids:
        with suppress(ProcessLookupError):
            os.kill(kid, signal.SIGKILL)
    return kids


class Killer(threading.Thread):
    """Kills one of the pool's workers every `every` seconds (uniform in the range)."""

    def __init__(self, pool: WorkerPool, every: tuple[float, float], seed: int):
        super().__init__(daemon=True, name="killer")
        self.pool, self.every, self.rng = pool, every, random.Random(seed)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.rng.uniform(*self.every)):
            self.pool.kill_one(self.rng)


def delete_run_keys(jobs_redis, queue_name: str, job_ids: list[str]) -> int:  # noqa: ANN001
    """Remove the run's keys from a shared Redis (never FLUSHDB): its queue's, its jobs', its
    workers' (killed ones never unregister), and their names in RQ's global sets."""
    workers = [w.decode() for w in jobs_redis.smembers(f"rq:workers:{queue_name}")]
    for shared in ("rq:workers", "rq:workers:sms"):
        if workers:
            jobs_redis.srem(shared, *workers)
    jobs_redis.srem("rq:queues", f"rq:queue:{queue_name}")
    keys = list(jobs_redis.scan_iter(match=f"*{queue_name}*", count=1000))
    keys += [k for w in workers for k in (w, f"{w}:executions")]
    for job_id in job_ids:
        keys += [f"rq:job:{job_id}", f"rq:results:{job_id}", f"rq:executions:{job_id}",
                 f"rq:job:{job_id}:dependents"]
    for i in range(0, len(keys), 1000):
        jobs_redis.delete(*keys[i:i + 1000])
    return len(keys)
