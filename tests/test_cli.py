"""The `ivr` command as ops staff and the README use it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr_server.cli import main

from .conftest import DEMO_FLOWS, ROOT

BROKEN_FLOW = """\
flow: broken
start: menu
nodes:
  menu:
    type: menu
    prompt: Press 1.
    options:
      - { key: "1", goto: nowhere }
    fallback: menu
  orphan:
    type: say
    text: "{{ unclosed"
    next: menu
"""


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.toml"), *args])
    return result.exit_code, result.output


def test_flows_check_passes_the_demo(tmp_path: Path):
    code, out = run_cli("flows", "check", str(DEMO_FLOWS))
    assert code == 0, out


def test_flows_check_reports_every_problem_as_file_line_and_fails(tmp_path: Path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN_FLOW)
    code, out = run_cli("flows", "check", str(bad))
    assert code == 1
    assert f"{bad}:8: node 'menu' options[1] goes to unknown node 'nowhere'" in out
    assert f"{bad}:4: menu 'menu' has no path to a human" in out
    assert f"{bad}:12: node 'orphan': template error" in out
    assert f"{bad}:10: warning: node 'orphan' is unreachable" in out


def test_flows_graph_draws_the_demo_as_mermaid_and_dot():
    code, out = run_cli("flows", "graph", "company")
    assert code == 0 and out.startswith("flowchart TD")
    code, out = run_cli("flows", "graph", str(DEMO_FLOWS / "company.yaml"), "--format", "dot")
    assert code == 0 and out.startswith("digraph")


def test_flows_test_runs_the_demo_flow_tests():
    code, out = run_cli("flows", "test", str(DEMO_FLOWS))
    assert code == 0, out
    assert out.strip().splitlines()[-1].endswith("0 failed")


def test_db_upgrade_creates_the_schema(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'log.sqlite3'}")
    code, out = run_cli("db", "upgrade")
    assert code == 0, out
    assert "database at revision" in out and "None" not in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> dict[int, str]:
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue
        if int(fields[3]) == pid:
            found[int(fields[0])] = fields[1].strip("()")
    return found


@pytest.mark.slow
def test_serve_runs_on_embedded_defaults_takes_a_call_and_leaves_nothing_behind(
        tmp_path: Path):
    port = _free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[flows]\ndirectory = "{DEMO_FLOWS}"\n')
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL")}
    env["IVR_CONFIG"] = str(config)
    server = subprocess.Popen([sys.executable, "-m", "ivr_server", "serve", "--port", str(port)],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    banner = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            banner.append(line)
            if line.startswith("Signatures:"):
                break
        text = "".join(banner)
        assert f"A call comes in:         http://127.0.0.1:{port}/voice/incoming" in text, text
        assert "embedded redis-server" in text and "sqlite:///" in text
        assert (tmp_path / "instance" / "ivr.sqlite3").exists()
        redis_children = [p for p, name in _children(server.pid).items() if "redis" in name]
        assert redis_children, "the embedded redis-server should be a child of the server"
        assert f"embedded redis-server (pid {redis_children[0]})" in text

        script = tmp_path / "call.yaml"
        script.write_text("- hear: Thanks for calling Acme\n")  # open or closed: wall clock
        _wait_for_port(port)
        call = subprocess.run([sys.executable, "-m", "ivr_server", "call", "--url",
                               f"http://127.0.0.1:{port}", "--script", str(script)],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert call.returncode == 0, call.stdout + call.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    time.sleep(0.2)
    for pid in redis_children:
        assert not Path(f"/proc/{pid}").exists() or \
            "zombie" in Path(f"/proc/{pid}/status").read_text(), "orphan redis-server left behind"


def _wait_for_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


@pytest.mark.slow
def test_embedded_redis_dies_with_a_server_that_is_killed_outright(tmp_path: Path):
    code = ("import sys, time; from pathlib import Path; "
            "from ivr_server.redis_conn import EmbeddedRedis; "
            "r = EmbeddedRedis(Path(sys.argv[1])); print(r.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "instance")],
                              stdout=subprocess.PIPE, text=True)
    redis_pid = int(parent.stdout.readline())
    assert Path(f"/proc/{redis_pid}").exists()
    parent.kill()  # SIGKILL: no exit handlers run
    parent.wait(10)
    for _ in range(100):
        if not Path(f"/proc/{redis_pid}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{redis_pid}").exists(), "orphan redis-server left behind"
