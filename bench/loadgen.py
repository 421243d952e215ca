"""Open-loop load at a fixed rate, latency measured from each request's scheduled send time.

Why not wrk: wrk is closed-loop (a slow answer delays the next request, hiding the very
stalls p99 should show: coordinated omission). Here request i is due at t0 + i/rate no
matter how earlier ones fared; a pool of threads with keep-alive http.client connections
sends it, and latency = answer time - due time, so queueing anywhere counts.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass

from .calls import EXPECTED, INCOMING, KINDS, Req, classify

NOT_OK = ("forbidden", "other_status", "socket_error")


@dataclass
class OpenLoopResult:
    rate: float
    sent: int
    seconds: float
    latency_ms: dict[str, float]
    service_ms: dict[str, float]  # from the actual send: what the server alone took
    by_kind_ms: dict[str, dict[str, float]]  # server time of each step: incoming is dearest
    categories: dict[str, int]
    intended: int
    late_starts: int  # sent > 5 ms after due: the client itself fell behind
    order_waits: int  # a step was due before its previous step was answered


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    s = sorted(values)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))], 2)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(s[-1], 2)}


def run_open_loop(host: str, port: int, reqs: list[Req], rate: float, *,
                  check: bool = True, pool: int = 48, timeout: float = 10.0) -> OpenLoopResult:
    """Send `reqs` in order at exactly `rate` per second; `check`: compare answers to EXPECTED."""
    n = len(reqs)
    latency = [0.0] * n
    service = [0.0] * n
    category = [""] * n
    answered = [threading.Event() for _ in range(n)]
    position = {(r.kind, r.call): i for i, r in enumerate(reqs)}
    counter = itertools.count()
    late = [0]
    waits = [0]
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.2

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        while (i := next(counter)) < n:
            req = reqs[i]
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.005:
                with lock:
                    late[0] += 1
            if req.kind != INCOMING:
                before = answered[position.get((req.kind - 1, req.call), i)]
                if not before.is_set():
                    with lock:
                        waits[0] += 1
                    before.wait(timeout)
            start = time.perf_counter()
            try:
                conn.request("POST", req.path, body=req.body, headers=req.headers())
                resp = conn.getresponse()
                status, body = resp.status, resp.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                status, body = 0, ""
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            end = time.perf_counter()
            latency[i], service[i] = (end - due) * 1000, (end - start) * 1000
            category[i] = classify(status, body)
            answered[i].set()
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(pool)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cats = Counter(category)
    if check:
        intended = sum(1 for r, c in zip(reqs, category, strict=True) if c == EXPECTED[r.kind])
    else:  # the bare app answers one fixed document: any 200 is what it should say
        intended = sum(v for c, v in cats.items() if c not in NOT_OK)
    by_kind = {}
    for k in EXPECTED:
        p = percentiles([lat for r, lat in zip(reqs, service, strict=True) if r.kind == k])
        by_kind[KINDS[k]] = {"p50": p["p50"], "p99": p["p99"]}
    return OpenLoopResult(
        rate=rate, sent=n, seconds=round(elapsed, 2), latency_ms=percentiles(latency),
        service_ms=percentiles(service), by_kind_ms=by_kind, categories=dict(cats),
        intended=intended, late_starts=late[0], order_waits=waits[0])
