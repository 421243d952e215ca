"""Everything the benchmark starts: wrk (installed if missing), Redis, the database, gunicorn.

Why a module of its own: each thing started here must be stopped on every way out
(normal end, error, Ctrl-C), so they are all context managers the runner stacks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """The benchmark cannot run (exit 2); the message says why and what to do."""

    exit_code = 2


def run_main(prog: str, run: Callable[[], int]) -> int:
    """A bench's command: SIGTERM stops it like Ctrl-C (everything it started is stopped on
    the way out), and a BenchError is a message and exit status 2."""

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run()
    except BenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


def ensure_wrk() -> str:
    """wrk's path, installing the Debian package when we are root (the only way we can)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("wrk is not installed and this is not root on Debian/Ubuntu, so the "
                         "bench cannot install it. Install it (Debian/Ubuntu: `sudo apt-get "
                         "install -y wrk`, macOS: `brew install wrk`) and run again.")
    print("wrk is missing: apt-get update && apt-get install -y wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    found = shutil.which("wrk")
    if not found:
        raise BenchError("apt-get installed wrk but it is not on PATH")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: connects are refused at once, and no other
    process can take the port while we hold it. The demo's CRM lookup goes here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@contextmanager
def redis_url(tmp: Path) -> Iterator[tuple[str, int | None]]:
    """REDIS_URL when set, else an embedded redis-server on a unix socket in `tmp` (its pid)."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"], None
        return
    from ivr_server.redis_conn import EmbeddedRedis

    embedded = EmbeddedRedis(tmp / "redis")
    try:
        yield embedded.url, embedded.pid or -1
    finally:
        embedded.shutdown()


def database_url(tmp: Path) -> tuple[str, bool]:
    """DATABASE_URL when set, else SQLite in `tmp`; migrated to head either way (a no-op if so)."""
    from ivr_server import db

    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'ivr.sqlite3'}"
    db.upgrade(url)
    return url, not os.environ.get("DATABASE_URL")


def open_hours_offset(flows_dir: Path, flow: str = "company", margin_s: int = 900) -> int:
    """Seconds to add to the server's clock so the demo flow is open for the whole run.

    Outside office hours the demo answers 'we're closed' and never reaches the menu; the
    bench must measure the same path at any hour, so it shifts the clock (0 when open).
    """
    from flows.hours import in_hours, local_time
    from flows.loader import load_flow_file

    model = load_flow_file(flows_dir / f"{flow}.yaml").model
    now = dt.datetime.now(dt.UTC)

    def open_for_run(t: dt.datetime) -> bool:
        return in_hours(model, "office", t) and in_hours(model, "office",
                                                         t + dt.timedelta(seconds=margin_s))

    if open_for_run(now):
        return 0
    local = local_time(model, now)
    for day in range(1, 15):
        candidate = (local + dt.timedelta(days=day)).replace(hour=10, minute=0, second=0,
                                                             microsecond=0)
        if open_for_run(candidate):
            return int((candidate - now).total_seconds())
    raise BenchError(f"flow {flow}: no open hours found in the next two weeks")


@dataclass(frozen=True)
class GunicornSettings:
    workers: int = 3
    worker_class: str = "sync"
    threads: int = 1

    def args(self) -> list[str]:
        out = ["--workers", str(self.workers), "--worker-class", self.worker_class]
        return out + (["--threads", str(self.threads)] if self.worker_class == "gthread" else [])

    @property
    def label(self) -> str:
        extra = f" x{self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.workers} {self.worker_class} workers{extra}"

    @classmethod
    def parse(cls, text: str) -> GunicornSettings:
        """'3', '3:sync' or '2:gthread:4' (workers[:class[:threads]])."""
        parts = text.split(":")
        workers = int(parts[0])
        kind = parts[1] if len(parts) > 1 else "sync"
        threads = int(parts[2]) if len(parts) > 2 else (4 if kind == "gthread" else 1)
        return cls(workers, kind, threads)


class Gunicorn:
    """One gunicorn master on 127.0.0.1:port, in its own session so we alone decide its end."""

    def __init__(self, app: str, port: int, env: dict[str, str], settings: GunicornSettings,
                 log_path: Path):
        self.app, self.port, self.env, self.settings = app, port, env, settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        cmd = [sys.executable, "-m", "gunicorn", self.app, "--bind", f"127.0.0.1:{self.port}",
               *self.settings.args(), "--log-level", "warning", "--timeout", "30",
               "--graceful-timeout", "5", "--worker-tmp-dir", "/dev/shm"
               if Path("/dev/shm").is_dir() else str(self.log_path.parent)]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self._wait_listening()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"gunicorn {self.app} exited ({self.proc.returncode}):\n"
                                 f"{self.log_tail()}")
            workers = self.worker_pids()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if len(workers) >= self.settings.workers:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"gunicorn {self.app} did not start in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(entry.name))
        return sorted(pids)

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker process (the master is not counted)."""
        out = []
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out.append(round(int(line.split()[1]) / 1024, 1))
            except OSError:
                continue
        return out

    def cpu_seconds(self) -> float:
        """CPU time used so far by the workers: divided by requests it is the cost of one."""
        total = 0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def toml_str(text: str) -> str:
    return json.dumps(text)  # a TOML basic string is a JSON string for these values


def service_tables(*, account_sid: str, auth_token: str, api_base_url: str, redis_url: str,
                   prefix: str, database_url: str) -> str:
    """The [twilio], [redis] and [database] tables every bench config.toml has: where the
    run's own services are, so nothing comes from the environment."""
    q = toml_str
    return f"""\
[twilio]
account_sid = {q(account_sid)}
auth_token = {q(auth_token)}
api_base_url = {q(api_base_url)}

[redis]
url = {q(redis_url)}
key_prefix = {q(prefix)}

[database]
url = {q(database_url)}
"""
