"""Phase 1 of the load bench: callers arrive for `--minutes`, then the calls in progress
and the callbacks still open finish (the drain); what every process used is measured over
the steady window, when calls in progress have built up and arrivals still come.

Why a module of its own: the order matters (agents on duty before the first caller,
marks at the window's edges, agents hang up only after the drain) and is easiest to
check in one place.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from bench import load_checks, load_report, load_rig
from bench.cpu import Meter
from bench.load_calls import (
    QUEUE,
    Ctx,
    Timing,
    answer_placed,
    arrivals,
    mean_webhooks,
    parse_mix,
    start_agents,
)
from bench.load_client import LoadTransport, LockedQueues, Recorder, Scheduler, now
from bench.load_procs import HZ, Mark, Sampler, thread_ticks

# Each agent is busy for a reaction and a call (Timing: 4.5 + 5.5 s on average); sized so
# they are busy about 3/4 of the time: callers wait a little, and callbacks find a free one.
AGENT_BUSY_S, AGENT_UTILISATION = 10.0, 0.75


@dataclass
class Edge:
    """What the CPU counters said at one edge of the steady window."""

    mark: Mark
    pool_ticks: int
    process_s: float  # this process's user + system CPU seconds
    histogram: dict[float, float] | None  # the server's own request timings (/metrics)

    @classmethod
    def take(cls, sampler: Sampler, scheduler: Scheduler, port: int) -> Edge:
        t = os.times()
        return cls(sampler.mark(), thread_ticks(scheduler.native_ids), t.user + t.system,
                   load_checks.scrape_latency(port))


def agents_for(rate: float, mix: dict[str, float], scale: float, given: int | None) -> int:
    queued = sum(w for p, w in mix.items() if p != "billing") / sum(mix.values())
    return given or max(4, math.ceil(rate * queued * AGENT_BUSY_S * scale / AGENT_UTILISATION))


def phase1(run: Any) -> dict[str, Any]:
    args = run.args
    mix = parse_mix(args.mix)
    per_call = mean_webhooks(mix)
    rate = args.rate / per_call
    recorder = Recorder()
    scheduler = Scheduler(args.client_threads)
    ctx = Ctx(LoadTransport("127.0.0.1", run.port, recorder), load_rig.AUTH_TOKEN,
              LockedQueues(), scheduler, random.Random(args.seed), Timing(), args.time_scale,
              args.textable)
    run.placed.append(answer_placed(ctx))
    agents = agents_for(rate, mix, args.time_scale, args.agents)
    names = [f"agent-{i:03d}" for i in range(agents)]
    on_duty = load_rig.agents_on_duty(run.port, QUEUE, names)
    sampler = Sampler(run.roles)
    print(f"phase 1: {args.minutes:g} min, {rate:.1f} calls/s (~{per_call:.1f} webhooks each "
          f"-> ~{args.rate:.0f}/s), {on_duty} agents on duty, mix {args.mix}", flush=True)
    scheduler.start()
    sampler.begin()
    t0 = now()
    end = t0 + args.minutes * 60
    ramp = min(60.0, (end - t0) / 3)  # calls last up to a minute: then the mix is steady
    start_agents(ctx, agents)
    arrivals(ctx, rate, mix, end)
    first, last, meter = _arrivals(ctx, recorder, sampler, scheduler, run.port, t0, t0 + ramp,
                                     end)
    foreign = meter.foreign()
    drain_started = now()
    open_cb = 0
    while now() - drain_started < args.drain:
        open_cb = load_checks.open_callbacks(run.database)
        if ctx.still_active() == 0 and open_cb == 0:
            break
        time.sleep(1.0)
    drained = round(now() - drain_started, 1)
    unfinished = ctx.still_active() + open_cb
    stuck = ctx.describe_active() if unfinished else []
    ctx.agents_stop.set()
    time.sleep(max(2.0, ctx.timing.agent_poll * 3))  # idle agents hang up
    sampler.end()
    scheduler.stop()
    load_rig.agents_on_duty(run.port, QUEUE, names, "out")
    window = max(1e-9, last.mark.at - first.mark.at)
    checks = {"db": load_checks.database(run.database),
              "redis": load_checks.redis_state(run.redis_url, run.prefix, run.queues)}
    return {
        "arrival_rate": round(rate, 2), "webhooks_per_call_assumed": round(per_call, 2),
        "webhooks": {**load_report.webhook_stats(recorder.samples, t0, end, ramp),
                     "in_app_ms": load_checks.histogram_percentiles(first.histogram,
                                                                    last.histogram)},
        "calls": {"arrived": dict(ctx.arrived), "outcomes": dict(ctx.outcomes),
                  "by_persona": {f"{p} -> {o}": n for (p, o), n in ctx.by_persona.items()},
                  "callbacks_booked": ctx.outcomes.get("callback booked", 0),
                  "callees": ctx.callees, "agents": on_duty, "served": ctx.served,
                  "agent_calls": ctx.agent_calls},
        "client": {"failed_calls": ctx.failed + len(scheduler.crashes),
                   "crashes": scheduler.crashes[:5], "unfinished": unfinished,
                   "drain_s": drained,
                   "open_callbacks_at_end": open_cb, "failures": ctx.failures, "stuck": stuck,
                   "http_errors": recorder.errors, "reconnects": recorder.reconnects,
                   "late_starts": scheduler.late_starts,
                   "max_late_ms": round(scheduler.max_late * 1000, 1),
                   "pool_cpu_pct": round((last.pool_ticks - first.pool_ticks) / HZ / window
                                         * 100, 1),
                   "process_cpu_pct": round((last.process_s - first.process_s) / window * 100,
                                            1),
                   "threads": args.client_threads},
        "twilio": load_checks.twilio_requests(run.mock),
        "checks": checks,
        "processes": {**sampler.memory_mb(), "cpu_pct": Sampler.cpu(first.mark, last.mark),
                      "cpu_window_s": round(window, 1), "other_processes": foreign},
    }


def _arrivals(ctx: Ctx, recorder: Recorder, sampler: Sampler, scheduler: Scheduler,
              port: int, t0: float, steady: float, end: float) -> tuple[Edge, Edge, Meter]:
    """Until the arrivals stop: progress every 10 s, CPU marks at the steady window's edges."""
    last, seen = t0, 0
    first: Edge | None = None
    meter: Meter | None = None
    while now() < end:
        wake = min(now() + 10.0, end) if first is not None else min(steady, now() + 10.0)
        time.sleep(max(0.0, wake - now()))
        if first is None and now() >= steady:
            first, meter = Edge.take(sampler, scheduler, port), Meter.begin()
        n = len(recorder.samples)
        print(f"  {now() - t0:5.0f} s  calls arrived {sum(ctx.arrived.values())}, on the line "
              f"{ctx.still_active()}, {(n - seen) / max(1e-9, now() - last):.0f} webhooks/s, "
              f"failed {ctx.failed}", flush=True)
        last, seen = now(), n
    if first is None:
        first, meter = Edge.take(sampler, scheduler, port), Meter.begin()
    assert meter is not None
    return first, Edge.take(sampler, scheduler, port), meter
