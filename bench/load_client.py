"""The simulated callers' machinery: a timer heap run by a small thread pool, a keep-alive
HTTP transport that times every webhook from its scheduled moment, and Twilio's queues made
safe for calls that live on different threads.

Why a pool and not a thread per call: hundreds of calls are on the line at once, each idle
most of the time (listening to a prompt, holding); a call's next step is a timer in one
heap, run by whichever of a few threads is free, each thread with one keep-alive connection.
Why latency from the scheduled moment: a step is due when the previous answer has played;
if the client or the server falls behind, the wait until it is sent counts too (no
coordinated omission, as bench/loadgen.py).
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from ivr_server.simulator import HttpResult, SimulatedCall, TransportError
from ivr_server.simulator.queues import SimulatedQueues

SAFE_PATH = "having trouble"  # the [fallback] message and goodbye: something failed
now = time.perf_counter
_local = threading.local()  # per pool thread: its connection, the due time of its step


@dataclass(frozen=True)
class Sample:
    due: float  # when it should have been sent (perf_counter)
    start: float
    end: float
    kind: str  # the webhook's path without its query: /voice/queue/wait
    status: int
    category: str  # ok, safe_path, forbidden, other_status, socket_error


def classify(status: int, body: str) -> str:
    if status == 0:
        return "socket_error"
    if status == 403:
        return "forbidden"
    if not 200 <= status < 300:
        return "other_status"
    if SAFE_PATH in body:
        return "safe_path"
    return "ok"


class Recorder:
    """Every webhook's timing and category (list.append is atomic: no lock needed)."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.reconnects = 0
        self.errors: list[str] = []  # the first few failures, for the report

    def note_error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)


class LoadTransport:
    """The simulator's Transport over one keep-alive http.client connection per pool thread.
    The first request of a step is timed from the step's due time; the requests it chains
    (a Redirect, a status callback) from their own send, as Twilio sends them at once."""

    def __init__(self, host: str, port: int, recorder: Recorder, timeout: float = 15.0):
        self.host, self.port, self.recorder, self.timeout = host, port, recorder, timeout
        self.base_url = f"http://{host}:{port}"

    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(_local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            _local.conn = conn
        return conn

    def send(self, method: str, url: str, params: Mapping[str, str],
             headers: Mapping[str, str]) -> HttpResult:
        if not url.startswith(self.base_url):
            raise TransportError(f"{url} is not on the server under test ({self.base_url})")
        path = url[len(self.base_url):] or "/"
        body = urlencode(dict(params)).encode() if method == "POST" else None
        hdrs = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        start = now()
        due = getattr(_local, "due", None) or start
        _local.due = None
        status, text, kind = self._exchange(method, path, body, hdrs)
        end = now()
        category = classify(status, text)
        self.recorder.samples.append(Sample(due, start, end, urlsplit(path).path, status,
                                            category))
        if category != "ok":
            self.recorder.note_error(f"{method} {path} -> {status} {category}: {text[:160]!r}")
        if status == 0:
            raise TransportError(f"{method} {path}: {text}")
        return HttpResult(status, text, kind)

    def _exchange(self, method: str, path: str, body: bytes | None,
                  headers: dict[str, str]) -> tuple[int, str, str]:
        for attempt in (1, 2):
            conn = self._conn(fresh=attempt == 2)
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                return resp.status, text, resp.getheader("Content-Type") or ""
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as exc:
                conn.close()
                if reused and attempt == 1:  # the server closed an idle keep-alive: resend
                    self.recorder.reconnects += 1
                    continue
                return 0, f"{type(exc).__name__}: {exc}", ""
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                return 0, f"{type(exc).__name__}: {exc}", ""
        return 0, "unreachable", ""

    def websocket_url(self, url: str) -> str:
        raise TransportError("the load bench does not stream audio")


Step = Iterator[float | None]  # a call's story: each yield is the delay to its next step


@dataclass
class LoadCall:
    """One simulated call on the line: its simulator state, the story that drives it, and
    a lock, since an agent's step may act on a waiting caller from another thread."""

    persona: str
    scale: float  # real seconds per simulated second
    sim: SimulatedCall | None = None
    story: Step | None = None
    outcome: str = ""
    error: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    t_mark: float = field(default_factory=now)
    e_mark: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    def sim_now(self) -> float:
        """The call's simulated time now: what was heard plays in real time (scaled)."""
        return self.e_mark + (now() - self.t_mark) / self.scale

    def act(self, fn: Callable[[], Any]) -> float:
        """Run a simulator action at the call's simulated now (a caller who presses during a
        prompt cuts it short); returns the real seconds until what it heard has played."""
        sim = self.sim
        if sim is not None and not sim.ended:
            sim.elapsed = max(0.0, self.sim_now())
        before = sim.elapsed if sim is not None else 0.0
        fn()
        sim = self.sim
        after = sim.elapsed if sim is not None else 0.0
        self.t_mark, self.e_mark = now(), before
        return max(0.0, after - before) * self.scale

    def sync(self) -> None:
        """Bring the simulated clock to now (another call's step is about to act on it)."""
        if self.sim is not None and not self.sim.ended:
            e = self.sim_now()
            self.sim.elapsed = e
            self.t_mark, self.e_mark = now(), e


class LockedQueues(SimulatedQueues):
    """Twilio's queues for calls driven from several threads. An agent takes the head of
    the line only once it holds that caller's lock (lock order: agent, caller, queue), so
    a caller's own step never runs while an agent bridges them; `reserve` stops idle agents
    all rushing at one waiting caller."""

    def __init__(self, take_timeout: float = 10.0) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.owner: dict[int, LoadCall] = {}
        self.reserved: dict[str, int] = {}
        self.take_timeout = take_timeout

    def join(self, name: str, call: SimulatedCall) -> None:
        current = getattr(_local, "call", None)
        with self.lock:
            if current is not None:
                self.owner[id(call)] = current
            super().join(name, call)

    def leave(self, name: str, call: SimulatedCall) -> None:
        with self.lock:
            super().leave(name, call)

    def position(self, name: str, call: SimulatedCall) -> int:
        with self.lock:
            return super().position(name, call)

    def size(self, name: str) -> int:
        with self.lock:
            return super().size(name)

    def waiting(self, name: str, call: SimulatedCall) -> bool:
        with self.lock:
            return call in self.members.get(name, [])

    def reserve(self, name: str) -> bool:
        """An idle agent goes for a waiting caller nobody else is going for."""
        with self.lock:
            if len(self.members.get(name, [])) > self.reserved.get(name, 0):
                self.reserved[name] = self.reserved.get(name, 0) + 1
                return True
            return False

    def unreserve(self, name: str) -> None:
        with self.lock:
            self.reserved[name] = max(0, self.reserved.get(name, 0) - 1)

    def take(self, name: str) -> SimulatedCall | None:
        """The head of the line, its lock held by this thread until `release_taken()`."""
        deadline = now() + self.take_timeout
        while now() < deadline:
            with self.lock:
                line = self.members.get(name, [])
                head = line[0] if line else None
                owner = self.owner.get(id(head)) if head is not None else None
            if head is None or owner is None:
                return None
            if not owner.lock.acquire(timeout=max(0.0, deadline - now())):
                return None
            with self.lock:
                line = self.members.get(name, [])
                if line and line[0] is head and not head.ended:
                    line.pop(0)
                    _local.taken = owner
                    owner.sync()
                    return head
            owner.lock.release()
        return None

    def release_taken(self) -> LoadCall | None:
        owner = getattr(_local, "taken", None)
        _local.taken = None
        if owner is not None:
            owner.lock.release()
        return owner

    def forget(self, call: SimulatedCall) -> None:
        with self.lock:
            self.owner.pop(id(call), None)


class Scheduler:
    """A heap of (due, job) run by `threads` threads; a job gets its due time. Jobs are due
    when they are due: a late start is measured, never hidden. One thread (the leader)
    sleeps until the head is due, the idle rest until they are woken (as Java's DelayQueue):
    64 threads all timing out at the same instant cost the client more CPU than the calls."""

    def __init__(self, threads: int):
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._stopping = False
        self._leader: threading.Thread | None = None
        self.late_starts = 0  # jobs started more than 5 ms after due: the client fell behind
        self.max_late = 0.0
        self.crashes: list[str] = []  # a job that raised: a bug in the bench, never hidden
        self._late_lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"caller-{i}")
                        for i in range(threads)]
        self.native_ids: list[int] = []

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def at(self, due: float, job: Callable[[float], None]) -> None:
        with self._cv:
            entry = (due, next(self._seq), job)
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # a new head: whoever leads sleeps too long
                self._leader = None
                self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def _work(self) -> None:
        self.native_ids.append(threading.get_native_id())
        while True:
            with self._cv:
                me = threading.current_thread()
                while True:
                    if self._stopping:
                        return
                    if not self._heap:
                        self._cv.wait()
                        continue
                    wait = self._heap[0][0] - now()
                    if wait <= 0:
                        due, _, job = heapq.heappop(self._heap)
                        break
                    if self._leader is not None:
                        self._cv.wait()
                        continue
                    self._leader = me
                    try:
                        self._cv.wait(wait)
                    finally:
                        if self._leader is me:
                            self._leader = None
                if self._leader is None and self._heap:
                    self._cv.notify()  # someone must lead the wait for the next head
            late = now() - due
            if late > 0.005:
                with self._late_lock:
                    self.late_starts += 1
                    self.max_late = max(self.max_late, late)
            try:
                job(due)
            except Exception as exc:  # noqa: BLE001 - the thread must live on; the run fails
                with self._late_lock:
                    self.crashes.append(f"{type(exc).__name__}: {exc}"[:300])

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self.threads:
            t.join(timeout=20)


def run_story(scheduler: Scheduler, call: LoadCall, on_end: Callable[[LoadCall], None],
              due: float | None = None) -> None:
    """Drive `call.story` on the scheduler: each step runs holding the call's lock, the
    first webhook it sends is timed from the step's due time."""

    def step(due_at: float) -> None:
        delay: float | None = None
        finished = False
        with call.lock:
            _local.due, _local.call = due_at, call
            try:
                assert call.story is not None
                delay = next(call.story)
            except StopIteration:
                finished = True
            except Exception as exc:  # noqa: BLE001 - any failure is the call's error
                call.error = f"{type(exc).__name__}: {exc}"[:300]
                finished = True
            finally:
                _local.due = _local.call = None
        if finished or delay is None:
            on_end(call)
            call.done.set()
            return
        scheduler.at(now() + delay, step)

    scheduler.at(due if due is not None else now(), step)
