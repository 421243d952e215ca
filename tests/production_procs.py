"""`ivr serve --production` as a real process for the tests: started in its own instance
folder, ready once /readyz says so, stopped with SIGTERM as systemd would; and what a test
needs to check it left nothing running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path
    probes: list[dict] = field(default_factory=list)  # /readyz's answers until ready

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as systemd or a container runtime stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> dict[int, str]:
    """Every live process under `pid` (pid -> command name), from /proc."""
    parents: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = (int(fields[1]), name)
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, name) in parents.items():
            if ppid == parent and child not in found:
                found[child] = name
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def start_server(tmp_path: Path, name: str, config_text: str, env: dict[str, str]) -> Server:
    """`ivr serve --production` in its own folder (instance), ready once /readyz says so."""
    home = tmp_path / name
    home.mkdir()
    (home / "config.toml").write_text(config_text)
    port = free_port()
    log = home / "server.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))
             and k not in ("REDIS_URL", "DATABASE_URL", "PUBLIC_BASE_URL",
                           "PROMETHEUS_MULTIPROC_DIR")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ivr_server", "serve", "--production", "--port", str(port)],
            env={**clean, "IVR_CONFIG": str(home / "config.toml"), **env}, cwd=home,
            stdout=out, stderr=subprocess.STDOUT)
    return ready(Server(process, port, log))


def ready(server: Server) -> Server:
    """The server once /readyz answers 200 (Redis, SQL and the flows are all there)."""
    deadline = time.monotonic() + 120  # a bound for a busy 2-core machine, not a measurement
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited ({server.process.returncode}):\n"
                                 + server.output())
        try:
            probe = requests.get(f"{server.url}/readyz", timeout=5)
            server.probes.append(probe.json())
            if probe.status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the server was not ready:\n{server.output()}")


def config_text(flows: Path, numbers: dict[str, str], extra: str = "") -> str:
    lines = ["[flows]", f'directory = "{flows}"', "reload_interval = 0.0", "",
             "[flows.numbers]", *[f'"{k}" = "{v}"' for k, v in numbers.items()], "", extra]
    return "\n".join(lines) + "\n"


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(30)
