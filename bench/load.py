"""Production load: `python -m bench.load [--minutes 3] [--rate 200]` (`./dev bench load`).

Phase 1: for `--minutes`, callers arrive at random (open loop) at the rate that brings
about `--rate` webhooks a second, and walk bench/flows/load.yaml over HTTP against the
production server (gunicorn gthread workers): menus by keys, an account number, a queue
with simulated agents (some taken, some hang up, some accept a callback offer), wait texts
and callback confirmations the RQ worker sends to Twilio's contract (Prism), callbacks it
places and simulated callees answer. Every webhook is timed from its scheduled moment.
Then the arrivals stop and the calls in progress (and callbacks still due) finish.
Phase 2: the same server's maximum throughput with wrk against a bare Flask endpoint
under the same gunicorn settings, back to back. The RQ workers are paused meanwhile (texts
left over from phase 1 would take CPU from one side only); the replayed calls queue none.

Redis: REDIS_URL, else an embedded redis-server; SQL: DATABASE_URL (a fresh schema,
dropped after), else SQLite. Prints a Markdown table, saves JSON in bench/results/, and
exits 1 if any error happened (the target is none), 2 if the bench could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from bench import load_checks, load_report, load_rig, servers
from bench.load_calls import DEFAULT_MIX, PlacingCallsApi, parse_mix
from bench.load_phase import phase1
from bench.load_procs import Role, all_procs, descendants


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0, help="arrivals for this long (3)")
    p.add_argument("--rate", type=float, default=200.0, help="webhooks a second to aim at")
    p.add_argument("--mix", default=DEFAULT_MIX, help="persona weights (%(default)s)")
    p.add_argument("--agents", type=int, help="agents on duty (default: sized to the rate)")
    p.add_argument("--textable", type=float, default=0.3,
                   help="share of callers whose number takes texts (0.3; others: landlines)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="real seconds per simulated second of prompts and talk (1.0)")
    p.add_argument("--client-threads", type=int, default=64,
                   help="threads sending the simulated calls' webhooks (64)")
    p.add_argument("--workers", type=int, help="server workers (default: the production's)")
    p.add_argument("--threads", type=int, help="threads per worker (default: the production's)")
    p.add_argument("--rq-workers", type=int, default=1,
                   help="`ivr worker` processes sending texts and placing callbacks (1)")
    p.add_argument("--drain", type=float, default=120.0,
                   help="at most this many seconds for calls and callbacks still open")
    p.add_argument("--no-throughput", action="store_true", help="skip phase 2 (wrk)")
    p.add_argument("--wrk-seconds", type=float, default=15.0)
    p.add_argument("--wrk-calls", type=int, default=20000)
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the result here (not bench/results/)")
    p.add_argument("--keep-logs", type=Path, help="copy the server's and worker's logs here")
    return p.parse_args(argv)


def production_sizing(args: argparse.Namespace) -> tuple[int, int]:
    """Workers and threads: given, else what `ivr serve --production` picks by default."""
    from ivr_server.config import ServerConfig

    cfg = ServerConfig()
    try:
        from ivr_server.production import default_workers
    except ImportError:  # before `ivr serve --production`: gunicorn's usual rule
        def default_workers() -> int:
            return min(2 * (os.cpu_count() or 1) + 1, 8)
    workers = getattr(cfg, "workers", 0) or default_workers()
    return args.workers or workers, args.threads or getattr(cfg, "threads", 16)


class Run:
    """The run's services and what phase 1 and 2 need from them."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack):
        self.args, self.stack = args, stack
        self.run_id = secrets.token_hex(4)
        self.prefix = f"ivrload:{self.run_id}:"
        self.workers, self.threads = production_sizing(args)
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-load-")))
        self.placed: list[Any] = []  # set to the callee starter once the callers exist

    def start(self) -> None:
        from bench.callbacks_rig import twilio_mock
        from ivr_server.db import upgrade
        from tests.db_fixtures import fresh_database

        print("starting Prism (Twilio's contract), Redis, the database, the server and "
              "`ivr worker`...", flush=True)
        self.mock = self.stack.enter_context(twilio_mock(self.tmp))
        self.api = PlacingCallsApi(self.mock.base_url, lambda form: self.placed[0](form))
        self.api.start()
        self.stack.callback(self.api.close)
        self.redis_url, _ = self.stack.enter_context(servers.redis_url(self.tmp))
        self.database = self.stack.enter_context(fresh_database(self.tmp))
        upgrade(self.database)
        self.queues = [f"{self.prefix}sms", f"{self.prefix}callbacks"]
        self.stack.callback(self.cleanup)
        self.port = load_rig.free_port()
        self.config = load_rig.write_config(
            self.tmp, port=self.port, redis_url=self.redis_url, prefix=self.prefix,
            database_url=self.database, api_base_url=self.api.base_url)
        self.server = self.stack.enter_context(load_rig.production_server(
            self.config, self.port, self.workers, self.threads, self.tmp / "server.log"))
        self.workers_rq = [self.stack.enter_context(load_rig.rq_worker(
            self.config, self.tmp / f"worker-{i + 1}.log")) for i in range(self.args.rq_workers)]
        self.redis_pid = load_rig.redis_pid(self.redis_url)
        self.postgres_pid = load_rig.postgres_pid(self.database)

    def roles(self) -> dict[str, Role]:
        me = os.getpid()
        prism = tuple(p.pid for p in all_procs() if p.ppid == me and p.comm.startswith(
            ("node", "prism")))
        roles = {"server (gunicorn master)": Role((self.server.root,), "gunicorn worker"),
                 "ivr worker (RQ)": Role(tuple(w.pid for w in self.workers_rq),
                                         "ivr worker child"),
                 "bench process (callers, Calls API stand-in, Prism proxy)":
                     Role((me,), alone=True),
                 "Prism (node)": Role(prism, together=True)}
        if self.redis_pid:
            shared = "" if self.redis_url.startswith("unix:") else " (REDIS_URL: shared)"
            roles[f"redis-server{shared}"] = Role((self.redis_pid,), alone=True)
        if self.postgres_pid:
            roles["PostgreSQL, all backends (other users' too)"] = Role(
                (self.postgres_pid,), together=True, no_rss=True)
        return roles

    def logs(self) -> dict[str, Any]:
        """Error lines in the server's and the worker's logs, over both phases."""
        server_errors, server_lines = load_checks.log_errors(self.server.log)
        worker_errors, worker_lines = 0, []
        for log in sorted(self.tmp.glob("worker-*.log")):
            n, lines = load_checks.log_errors(log)
            worker_errors, worker_lines = worker_errors + n, worker_lines + lines
        return {"server_errors": server_errors, "server_lines": server_lines,
                "worker_errors": worker_errors, "worker_lines": worker_lines}

    def cleanup(self) -> None:
        try:
            load_checks.delete_keys(self.redis_url, self.prefix, self.queues)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's result
            print(f"bench: could not delete the run's Redis keys: {exc}", file=sys.stderr)

    def env(self) -> dict[str, Any]:
        from bench.report import hide_password

        return {"run_id": self.run_id, "cpus": os.cpu_count(), "server": self.server.how,
                "redis": "embedded redis-server" if self.redis_url.startswith("unix:")
                else hide_password(self.redis_url),
                "database": hide_password(self.database).split("?")[0],
                "redis_prefix": self.prefix, "workers": self.workers, "threads": self.threads}


@contextmanager
def paused(roots: Any) -> Iterator[None]:
    """SIGSTOP these processes and their children for the block, then SIGCONT."""
    procs = all_procs()
    pids = [p.pid for root in roots for p in descendants(root, procs)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def phase2(run: Run, wrk_path: str) -> dict[str, Any]:
    from bench import load_ratio

    args = run.args
    print(f"phase 2: wrk -t{args.wrk_threads} -c{args.connections} {args.wrk_seconds:g} s on "
          "the production server, then on bare Flask (same gunicorn settings)", flush=True)
    with paused(w.pid for w in run.workers_rq):
        ivr = load_ratio.ivr_throughput(wrk_path, run.tmp, run.port, load_rig.AUTH_TOKEN,
                                        run.run_id, args, run.redis_url, run.prefix)
    run.server.stop()
    bare = load_ratio.bare_throughput(wrk_path, run.tmp, Path(ivr["replay"]), run.workers,
                                      run.threads, args, load_rig.clean_env())
    ratio = ivr["result"]["rps"] / bare["result"]["rps"] if bare["result"]["rps"] else 0.0
    return {"ivr": ivr, "bare": bare, "ratio": round(ratio, 2)}


def run_bench(args: argparse.Namespace) -> int:
    wrk_path = None if args.no_throughput else servers.ensure_wrk()
    with ExitStack() as stack:
        run = Run(args, stack)
        run.start()
        p1 = phase1(run)
        p2 = phase2(run, wrk_path) if wrk_path else None
        env = run.env()
        server_tail = run.server.log_tail(20)
        logs = run.logs()
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in run.tmp.glob("*.log"):
                shutil.copy(log, args.keep_logs / log.name)
    result: dict[str, Any] = {"args": vars(args), "env": env, "phase1": p1, "phase2": p2,
                              "logs": logs}
    result["errors"] = load_report.errors(p1, p2, logs)
    result["notes"] = notes(result)
    print()
    print(load_report.table(result))
    failed = sum(result["errors"].values())
    if failed:
        for text in [*p1["client"]["crashes"], *p1["client"]["failures"][:3],
                     *p1["client"]["stuck"][:3],
                     *p1["client"]["http_errors"][:5],
                     *logs["server_lines"][:5], *logs["worker_lines"][:5]]:
            print(f"\n{text}")
        if logs["server_errors"]:
            print(f"\nserver log (tail):\n{server_tail}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nJSON: {args.json}")
    else:
        print(f"\nJSON: {load_report.save(result).relative_to(servers.ROOT)}")
    return 1 if failed else 0


def notes(result: dict[str, Any]) -> list[str]:
    out = []
    if not load_rig.has_production_serve():
        out.append("`ivr serve --production` is not in this checkout: the server ran as "
                   "gunicorn on ivr_server.wsgi:app with gthread workers.")
    procs = result["phase1"]["processes"]
    busy = sum(procs["cpu_pct"].values())
    cores = (os.cpu_count() or 1) * 100
    other = procs["other_processes"]
    if busy > 0.9 * cores:
        out.append(f"the processes of the run used {busy:.0f}% of {cores}% CPU: the machine "
                   "was saturated, so latency includes waiting for a core.")
    if other["percent_of_all_cpus"] + other["steal"] > 10:
        out.append(f"processes outside this run took {other['percent_of_all_cpus']}% of the "
                   f"CPUs (and steal {other['steal']}%) during the steady window: the figures "
                   "are pessimistic; run again on a quiet machine.")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        parse_mix(args.mix)
    except ValueError as exc:
        print(f"bench.load: {exc}", file=sys.stderr)
        return 2
    return servers.run_main("bench.load", lambda: run_bench(args))


if __name__ == "__main__":
    sys.exit(main())
