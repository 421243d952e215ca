"""Flow tests, `ivr call` and the simulator against the real server (create_app), no stand-ins.

Redis is REDIS_URL when set (CI), else an embedded redis-server; the call log is SQLite.
"""

from __future__ import annotations

import io
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from werkzeug.serving import make_server

from flows.events import LookupDone
from ivr_server import create_app, db
from ivr_server.cli_call import call_command, flows_test_command
from ivr_server.config import Config
from ivr_server.flowtest import run_flow_tests
from ivr_server.redis_conn import connect
from ivr_server.simulator import InProcessTransport, SimulatedCall, SimulatorError

from .conftest import DEMO_FLOWS as EXAMPLES
from .conftest import OPEN_HOURS as TUESDAY_10AM  # 10:00 in New York

TOKEN = "f" * 32


@pytest.fixture
def config(tmp_path: Path, redis_url: str) -> Iterator[Config]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    c = Config(base_dir=str(tmp_path))
    c = c.with_section("server", instance_path=str(tmp_path / "instance"))
    c = c.with_section("twilio", auth_token=TOKEN)
    c = c.with_section("redis", url=redis_url, key_prefix=prefix)
    c = c.with_section("database", url=f"sqlite:///{tmp_path / 'ivr.sqlite3'}")
    c = c.with_section("flows", directory=str(EXAMPLES), reload_interval=0.0,
                       settings={"crm_url": "http://127.0.0.1:9"})
    yield c
    client = connect(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


# -- the flow-test runner ----------------------------------------------------------------------


def test_the_demo_flow_passes_its_own_tests(config: Config) -> None:
    out = io.StringIO()
    failures = run_flow_tests([str(EXAMPLES / "company.test.yaml")], config, out=out)
    assert failures == 0, out.getvalue()
    summary = out.getvalue().strip().splitlines()[-1]
    assert summary.endswith("passed, 0 failed") and int(summary.split()[0]) >= 15


def write_tests(folder: Path, tests: list[dict]) -> Path:
    shutil.copy(EXAMPLES / "company.yaml", folder / "company.yaml")
    path = folder / "company.test.yaml"
    path.write_text(yaml.safe_dump({"flow": "company", "tests": tests}, sort_keys=False))
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_wrong_expectation_fails_at_its_line(config: Config, tmp_path: Path) -> None:
    path = write_tests(tmp_path, [
        {"name": "right", "at": "2026-11-24T10:00", "steps": [{"hear": "For billing"}]},
        {"name": "wrong", "at": "2026-11-24T10:00",
         "steps": [{"press": "3"}, {"hear": "Welcome to billing"}], "outcome": "transferred"},
        {"name": "wrong outcome", "at": "2026-11-24T19:30", "steps": [{"hear": "closed"}],
         "outcome": "transferred"},
    ])
    out = io.StringIO()
    assert run_flow_tests([str(tmp_path)], config, out=out) == 2
    text = out.getvalue()
    assert (f"{path}:{line_of(path, 'Welcome to billing')}: test 'wrong': expected to hear "
            "'Welcome to billing'; heard: \"I'm putting you straight through to our customer "
            "care team.\"") in text
    last_outcome = [i for i, line in enumerate(path.read_text().splitlines(), 1)
                    if "outcome: transferred" in line][-1]
    assert "test 'right'" not in text
    assert (f"{path}:{last_outcome}: test 'wrong outcome': expected "
            "outcome 'transferred'; the call log says 'closed'") in text
    assert text.strip().splitlines()[-1] == "1 passed, 2 failed"


def test_mistakes_in_a_test_file_are_reported_with_lines(config: Config, tmp_path: Path) -> None:
    path = write_tests(tmp_path, [{"name": "typos", "at": "2026-11-24T10:00",
                                   "lookups": {"crm": {"status": 200}},
                                   "steps": [{"hera": "Hello"}, {"press": 123}]}])
    out = io.StringIO()
    assert run_flow_tests([str(path)], config, out=out) == 3
    text = out.getvalue()
    assert f"{path}:{line_of(path, 'crm:')}: lookups: 'crm' is not an http node" in text
    assert f"{path}:{line_of(path, 'hera')}: unknown step 'hera'" in text
    assert f"{path}:{line_of(path, 'press: 123')}: press: 123: quote the keys" in text


def test_flows_test_command_exits_non_zero_on_failure(config: Config, tmp_path: Path) -> None:
    write_tests(tmp_path, [{"name": "x", "at": "2026-11-24T10:00", "steps": [{"hear": "Nope"}]}])
    result = CliRunner().invoke(flows_test_command, [str(tmp_path)], obj=config)
    assert result.exit_code == 1 and "0 passed, 1 failed" in result.output
    ok = CliRunner().invoke(flows_test_command, [], obj=config)  # default: the flows folder
    assert ok.exit_code == 0, ok.output


# -- the simulator against the app -------------------------------------------------------------


@pytest.fixture
def app(config: Config):  # noqa: ANN201
    db.upgrade(config.database_url)
    lookups = {"+14155550100": {"first_name": "Ada", "tier": "gold"}}

    def lookup(request):  # noqa: ANN001, ANN202
        data = lookups.get(request.params.get("phone", ""))
        return LookupDone(ok=data is not None, status=200 if data else 404, data=data)

    app = create_app(config, clock=lambda: TUESDAY_10AM, lookup=lookup,
                     redis_client=connect(config.redis.url))
    yield app
    app.extensions["ivr"].session_factory.kw["bind"].dispose()


def test_a_call_in_process_hears_the_menu_and_reaches_priority_support(app) -> None:  # noqa: ANN001
    call = SimulatedCall(InProcessTransport(app, "https://ivr.example.test"), TOKEN)
    call.dial()
    call.expect_heard("Hello Ada, thanks for calling Acme.")
    assert call.press("2") == ["Connecting you to our priority support team."]
    transfer = call.transferred_to
    assert (transfer.kind, transfer.target) == ("client", "client:priority-desk")
    assert transfer.params["reason"] == "support" and transfer.params["customer_tier"] == "gold"
    call.answer_dial()
    assert call.ended and call.status == "completed"


def test_a_wrong_token_is_refused_by_the_server(app) -> None:  # noqa: ANN001
    call = SimulatedCall(InProcessTransport(app, "https://ivr.example.test"), "0" * 32)
    with pytest.raises(SimulatorError, match="HTTP 403"):
        call.dial()


@pytest.fixture
def live_server(app) -> Iterator[str]:  # noqa: ANN001
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_ivr_call_runs_a_script_against_a_running_server(config: Config, live_server: str,
                                                         tmp_path: Path) -> None:
    script = tmp_path / "billing.yaml"
    script.write_text('- hear: Hello Ada\n- press: "1"\n- press: "12345674"\n'
                      "- transferred_to: \"+15005550006\"\n"
                      '- agent_hears: "account number: 1 2 3 4 5 6 7 4"\n')
    result = CliRunner().invoke(call_command, ["--url", live_server, "--script", str(script)],
                                obj=config)
    assert result.exit_code == 0, result.output
    assert "Connecting you to billing." in result.output and "ended: completed" in result.output

    script.write_text('- hear: Hello Ada\n- press: "3"\n- hear: Connecting you to billing\n')
    failed = CliRunner().invoke(call_command, ["--url", live_server, "--script", str(script)],
                                obj=config)
    assert failed.exit_code == 1
    assert f"{script}:3: expected to hear 'Connecting you to billing'" in failed.output


def test_ivr_call_interactive_keys_silence_and_hangup(config: Config, live_server: str) -> None:
    result = CliRunner().invoke(call_command, ["--url", live_server, "--from", "+14155550199"],
                                obj=config, input="\n9\nh\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Thanks for calling Acme." in out and "Hello" not in out
    assert "Sorry, I didn't hear a choice." in out
    assert "Sorry, that isn't one of the choices." in out
    assert "ended: completed" in out


def test_ivr_call_interactive_waits_on_hold_until_an_agent_takes_the_call(
        config: Config, live_server: str) -> None:
    result = CliRunner().invoke(call_command, ["--url", live_server, "--from", "+14155550199"],
                                obj=config, input="0\n\nw 30\na 90\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Connecting you to someone who can help. Please hold." in out
    assert "You are number 1 in line." in out and "on hold:" in out
    assert "ended: completed" in out


def test_ivr_call_dials_the_default_flow_when_other_numbers_are_mapped(
        config: Config, clock) -> None:  # noqa: ANN001
    from ivr_server import create_app

    mapped = config.with_section("flows", numbers={"+15005550010": "agents",
                                                   "+15005550011": config.flows.default},
                                 settings=config.flows.settings)
    server = make_server("127.0.0.1", 0, create_app(mapped, clock=clock), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = CliRunner().invoke(call_command, [
            "--url", f"http://127.0.0.1:{server.server_port}", "--from", "+14155550199"],
            obj=mapped, input="h\n")
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    assert "Thanks for calling Acme." in result.output


def test_ivr_call_signs_with_the_generated_local_token(config: Config, tmp_path: Path) -> None:
    from ivr_server.cli_call import find_token

    local = config.with_section("twilio", auth_token="")
    token_file = local.instance_dir / "dev_auth_token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text("abc123\n")
    assert find_token(local, None) == "abc123"
    assert find_token(local, "given") == "given"
    assert find_token(config, None) == TOKEN
