"""What the load bench runs against: the production server, `ivr worker`, Redis, the
database, and Twilio's REST contract (Prism) behind the Calls API stand-in that answers
placed callbacks with simulated callees.

Why a module of its own: every process started here must be stopped on every way out
(normal end, error, Ctrl-C), so each is a context manager the runner stacks; and the
server is started by one function, `production_server`, so the way it is run is one line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from bench.servers import (
    ROOT,
    BenchError,
    Gunicorn,
    GunicornSettings,
    service_tables,
    toml_str,
)
from ivr_server.config import ENV_OVERRIDES

FLOWS = ROOT / "bench" / "flows"
ACCOUNT_SID = "AC" + "10ad" * 8
AUTH_TOKEN = "bench-load-token-0000000000000000"
AGENTS_TOKEN = "bench-load-agents-token"
IVR = Path(sys.executable).with_name("ivr")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the server's own variables: only the config file counts
    (the bench's REDIS_URL/DATABASE_URL are already in it, as the run's own)."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


q = toml_str


def write_config(tmp: Path, *, port: int, redis_url: str, prefix: str, database_url: str,
                 api_base_url: str) -> Path:
    """One config file for the server and the worker: every setting the bench relies on."""
    flows = tmp / "flows"
    if not flows.exists():  # a snapshot: an edit to the work tree mid-run must not break it
        shutil.copytree(FLOWS, flows)
    path = tmp / "config.toml"
    path.write_text(f"""\
[server]
public_base_url = {q(f"http://127.0.0.1:{port}")}
host = "127.0.0.1"
port = {port}
instance_path = {q(str(tmp / "instance"))}

{service_tables(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=api_base_url,
                redis_url=redis_url, prefix=prefix, database_url=database_url)}
[flows]
directory = {q(str(flows))}
default = "load"

[flows.numbers]
"+15005550010" = "load_agents"

[queues]
api_token = {q(AGENTS_TOKEN)}

[sms]
from_number = "+15005550006"
wait_threshold = 0            # every queued caller with an estimate gets one wait text

[callbacks]
from_number = "+15005550006"
callee_hours = "00:00-24:00"  # at any hour the bench runs
recheck_seconds = 1
""", encoding="utf-8")
    return path


@dataclass
class ServerProc:
    """The server under test: its root process (the gunicorn master, or `ivr serve`)."""

    port: int
    root: int
    how: str  # the command line, for the report
    log: Path
    _stop: object

    def stop(self) -> None:
        self._stop()  # type: ignore[operator]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def has_production_serve() -> bool:
    """`ivr serve --production` exists (ivr_server/production.py, the next issue's work)."""
    return (ROOT / "ivr_server" / "production.py").exists()


@contextmanager
def production_server(config: Path, port: int, workers: int, threads: int,
                      log: Path) -> Iterator[ServerProc]:
    """The server as production runs it: `ivr serve --production` (gunicorn gthread
    workers) when this checkout has it, else gunicorn on ivr_server.wsgi:app with the same
    worker model."""
    if has_production_serve():
        with serve_production(config, port, workers, threads, log) as server:
            yield server
        return
    env = clean_env(IVR_CONFIG=str(config))
    settings = GunicornSettings(workers, "gthread", threads)
    with Gunicorn("ivr_server.wsgi:app", port, env, settings, log) as g:
        assert g.proc is not None
        yield ServerProc(port, g.proc.pid, f"gunicorn ivr_server.wsgi:app ({settings.label})",
                         log, g.stop)


@contextmanager
def serve_production(config: Path, port: int, workers: int, threads: int,
                     log: Path) -> Iterator[ServerProc]:
    cmd = [str(IVR), "serve", "--production", "--port", str(port)]
    env = clean_env(IVR_CONFIG=str(config), IVR_WORKERS=str(workers),
                    IVR_THREADS=str(threads))
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=config.parent, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def stop() -> None:
        _stop_group(proc)

    try:
        _wait_answering(port, proc, log, workers)
        yield ServerProc(port, proc.pid, " ".join(["ivr", *cmd[1:]])
                         + f" (IVR_WORKERS={workers} IVR_THREADS={threads})", log, stop)
    finally:
        stop()


def _wait_answering(port: int, proc: subprocess.Popen[bytes], log: Path, workers: int,
                    timeout: float = 60.0) -> None:
    """Until the server answers HTTP and all its workers are up."""
    from bench.load_procs import all_procs, descendants

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the server exited ({proc.returncode}):\n"
                             f"{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if len(descendants(proc.pid, all_procs())) > workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    _stop_group(proc)
    raise BenchError(f"the server did not answer within {timeout:.0f} s:\n"
                     f"{log.read_text(errors='replace')[-3000:]}")


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def rq_worker(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`ivr worker`: sends the texts and places the callbacks the webhooks queued."""
    cmd = [str(IVR), "worker"] if IVR.exists() else [sys.executable, "-m", "ivr_server.cli",
                                                     "worker"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=config.parent, env=clean_env(IVR_CONFIG=str(config)),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        time.sleep(0.5)
        if proc.poll() is not None:
            raise BenchError(f"ivr worker exited ({proc.returncode}):\n"
                             f"{log.read_text(errors='replace')[-3000:]}")
        yield proc
    finally:
        _stop_group(proc)


def agents_on_duty(port: int, queue: str, names: list[str], direction: str = "in") -> int:
    """Sign agents in (or out) through the agents API, as a desk phone would; returns how
    many the server says are on duty."""
    import http.client

    on_duty = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for name in names:
            conn.request("POST", f"/agents/sign-{direction}",
                         body=urlencode({"queue": queue, "agent": name}),
                         headers={"Authorization": f"Bearer {AGENTS_TOKEN}",
                                  "Content-Type": "application/x-www-form-urlencoded"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise BenchError(f"agents API: sign-{direction} {name} answered {resp.status}: "
                                 f"{body[:200]!r}")
            on_duty = len(json.loads(body)["on_duty"])
    finally:
        conn.close()
    return on_duty


def redis_pid(redis_url: str) -> int | None:
    """The redis-server's own pid (INFO), embedded or not."""
    from ivr_server.redis_conn import connect

    client = connect(redis_url)
    try:
        return int(client.info("server")["process_id"])
    except Exception:  # noqa: BLE001 - a Redis elsewhere: no pid to watch
        return None
    finally:
        client.close()


def postgres_pid(database_url: str) -> int | None:
    """The postmaster's pid when PostgreSQL runs on this machine (its backends are below it)."""
    if not database_url.startswith("postgres"):
        return None
    from sqlalchemy import text

    from ivr_server.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as cn:
            backend = int(cn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    except Exception:  # noqa: BLE001 - not ours to watch
        return None
    finally:
        engine.dispose()
    try:
        stat = Path(f"/proc/{backend}/stat").read_text()
        return int(stat[stat.rfind(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None
