"""Callback reliability under worker crashes: `.venv/bin/python -m bench.callbacks`.

Books N callbacks through `Callbacks.book` (as the webhooks do), due evenly over `--span`
seconds starting shortly after booking ends, and lets two `ivr worker` processes place them
through Twilio's contract mock (Prism, as tests/prism.py starts it) behind CallsApi, the
journal of accepted Calls.create requests that the reconciler asks after a crash. A killer
thread SIGKILLs one worker (with anything it started) every `--kill-every` seconds and
starts a replacement at once.

Measured, from the journal: callbacks never dialled (target 0), callbacks placed more than
once (target 0), and the lag from each callback's due time to its first Calls.create reaching
"Twilio" (target p99 <= 2 s). From SQL and the workers' logs: attempts the reconciler
recovered.

Redis: REDIS_URL, else an embedded redis-server; SQL: DATABASE_URL (PostgreSQL; a fresh
schema, dropped after), else a SQLite file. Each run has its own key prefix (so its own RQ
queue) and removes its keys afterwards. Prints a table; saves JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select

from bench.callbacks_rig import (
    Killer,
    TimedCallsApi,
    WorkerPool,
    become_subreaper,
    delete_run_keys,
    twilio_mock,
    us_numbers,
    write_config,
)
from bench.report import hide_password
from bench.servers import BenchError, redis_url
from ivr_server.callback_setup import callback_context, queue_name_for
from ivr_server.clock import system_clock
from ivr_server.config import load_config
from ivr_server.db import make_engine, make_session_factory, upgrade
from ivr_server.models import CallbackRequest, CallEvent
from ivr_server.redis_conn import connect
from tests.db_fixtures import fresh_database

RESULTS = Path(__file__).resolve().parent / "results"
WARMUP = (20, 100)  # unscored callbacks booked first, due at once: to warm up, then to time
TARGET_P99_S = 2.0
RECONCILED = re.compile(r"callbacks reconciled: (\{.*\})")


@dataclass(frozen=True)
class Booked:
    callback_id: int
    due: float  # epoch seconds, as the store has it


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def book_all(callbacks: Any, numbers: list[str], targets: list[float], sid_prefix: str,
             threads: int, first: int = 0) -> tuple[list[Booked], list[str]]:
    """Book one callback per number, each due at its target (epoch seconds)."""
    def one(i: int) -> Booked | str:
        booking = callbacks.book(number=numbers[i], queue="bench", reason="offer",
                                 call_sid=f"{sid_prefix}{first + i:024x}",
                                 wait_seconds=max(0.0, targets[i] - time.time()))
        if not booking.ok or booking.callback_id is None or booking.due is None:
            return f"{numbers[i]}: {booking.error or ('merged' if booking.merged else '?')}"
        return Booked(booking.callback_id, booking.due.timestamp())

    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(one, range(len(numbers))))
    return [b for b in done if isinstance(b, Booked)], [e for e in done if isinstance(e, str)]


def wait_dialled(api: TimedCallsApi, ids: set[int], deadline: float, pool: WorkerPool,
                 queue: Any, started: float) -> None:
    """Until every id has reached Calls.create at least once, or the deadline."""
    shown = 0.0
    while time.time() < deadline:
        dialled = {a.callback_id for a in api.timed() if a.status == 201} & ids
        if len(dialled) == len(ids):
            return
        if time.time() - shown >= 10:
            shown = time.time()
            waiting = ScheduledJobRegistry(queue=queue).count
            print(f"  {shown - started:+6.0f} s  dialled {len(dialled)}/{len(ids)}  "
                  f"queued {queue.count}  scheduled {waiting}  kills {len(pool.kills)}",
                  flush=True)
        time.sleep(0.5)


def analyse(booked: list[Booked], api: TimedCallsApi, session_factory: Any,
            sid_prefix: str, pool: WorkerPool, jobs: Any
            ) -> dict[str, Any]:
    queue = jobs.queue
    ids = {b.callback_id for b in booked}
    creates: dict[int, list[float]] = {}
    refused = Counter()
    for a in api.timed():
        if a.callback_id not in ids:
            continue
        if a.status == 201:
            creates.setdefault(a.callback_id, []).append(a.at)
        else:
            refused[a.status] += 1
    lag_of = {b.callback_id: min(creates[b.callback_id]) - b.due for b in booked
              if b.callback_id in creates}
    lags = list(lag_of.values())
    with session_factory() as db:
        events = db.execute(select(CallEvent.kind, CallEvent.data).where(
            CallEvent.call_sid.like(f"{sid_prefix}%"),
            CallEvent.kind.in_(["callback_attempt_lost", "callback_call_placed"]))).all()
        rows = [r for r in db.execute(select(CallbackRequest.id, CallbackRequest.state,
                                             CallbackRequest.seq)) if r.id in ids]
    states = Counter(r.state for r in rows)
    in_redis = set(queue.get_job_ids()) | set(ScheduledJobRegistry(queue=queue).get_job_ids()) \
        | set(StartedJobRegistry(queue=queue).get_job_ids())
    pending = sum(1 for r in rows if r.id not in creates
                  and jobs.job_id(r.id, r.seq) in in_redis)
    firsts = sorted(min(t) for t in creates.values())
    first_due = min(b.due for b in booked)
    recorded = {(data or {}).get("sid") for kind, data in events
                if kind == "callback_call_placed"}
    journal_sids = [a.sid for a in api.timed() if a.status == 201 and a.callback_id in ids]
    logs = pool.log_text()
    reconciled: Counter[str] = Counter()
    for match in RECONCILED.finditer(logs):
        reconciled.update(json.loads(match.group(1).replace("'", '"')))
    errors = Counter(line.strip()[:160] for line in re.findall(
        r"^\w[\w.]*(?:Error|Exception)\b.*$", logs, re.M))
    return {
        "callbacks": len(booked), "workers_killed": len(pool.kills),
        "lost": len(ids - set(creates)), "undialled_job_waiting": pending,
        "dials_per_s": len(firsts) / max(1e-9, firsts[-1] - first_due) if firsts else 0.0,
        "placed_twice": sum(1 for t in creates.values() if len(t) > 1),
        "extra_creates": sum(len(t) - 1 for t in creates.values()),
        "refused_creates": dict(refused),
        "lag_s": {"min": min(lags, default=None), "p50": percentile(lags, 0.5),
                  "p90": percentile(lags, 0.9), "p99": percentile(lags, 0.99),
                  "max": max(lags, default=None),
                  "over_2s": sum(1 for x in lags if x > 2), "over_10s":
                  sum(1 for x in lags if x > 10), "over_60s": sum(1 for x in lags if x > 60)},
        "slowest": {i: round(lag_of[i], 1) for i in sorted(lag_of, key=lag_of.get)[-5:]},
        "attempts_lost_recovered": sum(1 for kind, _ in events
                                       if kind == "callback_attempt_lost"),
        "placed_unrecorded": sum(1 for sid in journal_sids if sid not in recorded),
        "reconciler_totals": dict(reconciled),
        "states": dict(states),
        "failed_jobs": FailedJobRegistry(queue=queue).count,
        "worker_errors": dict(errors.most_common(8)),
    }


def table(r: dict[str, Any], env: dict[str, Any]) -> str:
    lag = r["lag_s"]

    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    p99_ok = lag["p99"] is not None and lag["p99"] <= TARGET_P99_S
    rows = [
        ("callbacks", r["callbacks"], ""),
        ("workers killed", r["workers_killed"], ""),
        ("lost (never dialled)", r["lost"], "target 0" + (" ok" if not r["lost"] else
                                                          " MISSED") +
         (f"; {r['undialled_job_waiting']} of them still had a job in RQ when the bench stopped"
          if r["lost"] else "")),
        ("first dials per second (first due -> last first dial)", f"{r['dials_per_s']:.1f}",
         f"needed {env['callbacks'] / env['span_s']:.1f}"),
        ("placed twice", r["placed_twice"],
         "target 0" + (" ok" if not r["placed_twice"] else " MISSED")),
        ("lag due -> Calls.create min / p50 / p90 / p99 / max s",
         f"{s(lag['min'])} / {s(lag['p50'])} / {s(lag['p90'])} / {s(lag['p99'])} / "
         f"{s(lag['max'])}",
         f"target p99 <= {TARGET_P99_S:.0f} s" + (" ok" if p99_ok else " MISSED")),
        ("lag over 2 s / 10 s / 60 s", f"{lag['over_2s']} / {lag['over_10s']} / "
         f"{lag['over_60s']}", f"slowest (callback id: s) {r['slowest']}"),
        ("attempts recovered (callback_attempt_lost)", r["attempts_lost_recovered"],
         "claimed, worker died before Calls.create"),
        ("placed, worker died before recording it", r["placed_unrecorded"],
         "journal SIDs with no callback_call_placed"),
        ("reconciler totals (worker logs)", r["reconciler_totals"] or "-", ""),
        ("final states", r["states"], ""),
        ("failed RQ jobs / refused creates", f"{r['failed_jobs']} / {r['refused_creates']}", ""),
        ("elapsed s (booking s)", f"{r['elapsed_s']:.0f} ({r['booking_s']:.0f})", ""),
    ]
    lines = [f"### Callbacks under worker kills: {env['callbacks']} over {env['span_s']} s, "
             f"kill every {env['kill_every']} s", "",
             f"Redis {env['redis']}, database {env['database']}, run {env['run_id']}", "",
             "| measure | value | note |", "| --- | ---: | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if r["worker_errors"]:
        lines += ["", "Errors in the workers' logs (count):"]
        lines += [f"- {n} x `{text}`" for text, n in r["worker_errors"].items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    run_id = secrets.token_hex(4)
    prefix, sid_prefix = f"bench-cb-{run_id}:", f"CA{run_id}"
    every = tuple(float(x) for x in args.kill_every.split("-", 1))
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cb-")))
        print("starting Prism (Twilio's contract mock), Redis and the database...", flush=True)
        mock = stack.enter_context(twilio_mock(tmp))
        api = TimedCallsApi(mock.base_url).start()
        stack.callback(api.close)
        redis, _ = stack.enter_context(redis_url(tmp))
        database = stack.enter_context(fresh_database(tmp))
        upgrade(database)
        config = load_config(write_config(tmp / "config.toml", redis_url=redis, prefix=prefix,
                                          database_url=database, api_base_url=api.base_url),
                             env={})
        jobs_redis = connect(redis, decode=False)
        engine = make_engine(database, pool_size=args.threads + 2)
        stack.callback(engine.dispose)
        session_factory = make_session_factory(engine)
        ctx = callback_context(config, jobs_redis, session_factory, None, None, system_clock)
        queue = ctx.callbacks.jobs.queue
        env = {"run_id": run_id, "callbacks": args.callbacks, "span_s": args.span,
               "kill_every": args.kill_every,
               "redis": redis if "@" not in redis else hide_password(redis),
               "database": hide_password(database).split("?")[0],
               "queue": queue_name_for(config), "threads": args.threads}
        warm = sum(WARMUP)
        numbers = us_numbers(args.callbacks + warm, args.seed)
        t0 = time.time()
        book_all(ctx.callbacks, numbers[:WARMUP[0]], [t0] * WARMUP[0], sid_prefix,
                 args.threads, first=10**9)
        t1 = time.time()
        book_all(ctx.callbacks, numbers[WARMUP[0]:warm], [t1] * WARMUP[1], sid_prefix,
                 args.threads, first=10**9 + WARMUP[0])
        per = (time.time() - t1) / WARMUP[1]
        start = time.time() + args.lead + 1.15 * per * args.callbacks
        print(f"booking {args.callbacks} callbacks ({per * 1000:.1f} ms each, "
              f"{args.threads} threads); due from +{start - time.time():.0f} s over "
              f"{args.span} s", flush=True)
        targets = [start + (i + 0.5) * args.span / args.callbacks
                   for i in range(args.callbacks)]
        booked, problems = book_all(ctx.callbacks, numbers[warm:], targets, sid_prefix,
                                    args.threads)
        booking_s = time.time() - t0
        if problems:
            raise BenchError(f"{len(problems)} bookings failed, e.g. {problems[:3]}")
        if time.time() > start - 5:
            print(f"  warning: booking ended {time.time() - start:+.0f} s from the first due "
                  "time (the estimate was short)", flush=True)
        become_subreaper()
        pool = WorkerPool(tmp / "config.toml", tmp / "logs")
        stack.callback(pool.stop)
        pool.start()
        killer = Killer(pool, every, args.seed)
        if every[1] > 0:
            killer.start()
        print(f"2 workers started; waiting for {len(booked)} dials", flush=True)
        wait_dialled(api, {b.callback_id for b in booked},
                     start + args.span + args.timeout, pool, queue, start)
        killer.halt.set()
        tail = config.callbacks.dial_grace + 2 * config.callbacks.reconcile_interval + 5
        print(f"all dialled or timed out; {tail} s more for late doubles", flush=True)
        time.sleep(tail)
        pool.stop()
        result = analyse(booked, api, session_factory, sid_prefix, pool, ctx.callbacks.jobs)
        result.update(elapsed_s=time.time() - t0, booking_s=booking_s)
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in sorted((tmp / "logs").glob("*.log")):
                (args.keep_logs / log.name).write_bytes(log.read_bytes())
        with session_factory() as db:
            seqs = db.execute(select(CallbackRequest.id, CallbackRequest.seq)).all()
        job_ids = [ctx.callbacks.jobs.job_id(i, s) for i, top in seqs for s in range(1, top + 1)]
        delete_run_keys(jobs_redis, queue.name, job_ids)
        return result, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callbacks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=10_000)
    # Two workers on the 2-core reference machine place about 32 calls a second (Prism,
    # the journal, PostgreSQL and Redis share the cores): 10,000 over 500 s is 20 a second.
    parser.add_argument("--span", type=float, default=500.0,
                        help="seconds over which the callbacks come due")
    parser.add_argument("--kill-every", default="5-15",
                        help="seconds between kills, uniform in MIN-MAX (0-0: no kills)")
    parser.add_argument("--lead", type=float, default=15.0,
                        help="seconds from the end of booking to the first due time")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds after the span to wait for the last dial")
    parser.add_argument("--threads", type=int,
                        help="booking threads (default: 8 on PostgreSQL, 2 on SQLite)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-logs", type=Path, help="copy the workers' logs here")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = 8 if os.environ.get("DATABASE_URL", "").startswith("postgres") else 2
    try:
        result, env = run(args)
    except BenchError as exc:
        print(f"bench.callbacks: {exc}", file=sys.stderr)
        return exc.exit_code
    print()
    print(table(result, env))
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"callbacks-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps({"env": env, "result": result}, indent=2, default=str))
        print(f"\nsaved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
