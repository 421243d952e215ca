"""Ops edit flows while calls run: each call keeps its version; broken edits never go live."""

from __future__ import annotations

import logging
import uuid

from ivr_server import create_app
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport

from .conftest import AUTH_TOKEN, PUBLIC_URL

OLD_PROMPT = "For billing, press 1."
NEW_PROMPT = "For anything about bills or payments, press 1."


def edit_demo(flows_dir, old: str, new: str) -> None:
    path = flows_dir / "company.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_call_in_progress_keeps_its_version_while_new_calls_get_the_edit(place_call,
                                                                        flows_dir):
    first = place_call("+14155550100")
    first.expect_heard(OLD_PROMPT)
    edit_demo(flows_dir, OLD_PROMPT, NEW_PROMPT)
    second = place_call("+14155550101")
    second.expect_heard(NEW_PROMPT)
    first.silence()  # the reprompt comes from the version the call started on
    assert OLD_PROMPT in first.heard_since_input[-1]
    second.silence()
    assert NEW_PROMPT in second.heard_since_input[-1]


def test_broken_edit_is_refused_and_the_last_good_version_keeps_serving(
        place_call, flows_dir, app, caplog):
    place_call().expect_heard(OLD_PROMPT)
    edit_demo(flows_dir, "goto: account_number", "goto: acount_number")
    with caplog.at_level(logging.ERROR):
        call = place_call("+14155550102")
    call.expect_heard(OLD_PROMPT)
    call.press("1")
    call.expect_heard("eight digit account number")
    problems = [p for ps in app.extensions["ivr"].registry.problems().values() for p in ps]
    assert any("company.yaml:" in p and "unknown node 'acount_number'" in p for p in problems)
    assert "last good version keeps serving" in caplog.text


def test_another_process_serves_a_call_on_a_version_it_never_loaded(config, clock, app,
                                                                    flows_dir):
    first = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN)
    first.dial()
    edit_demo(flows_dir, OLD_PROMPT, NEW_PROMPT)
    other = create_app(config, clock=clock)  # started after the edit: only knows the new file
    first.transport = InProcessTransport(other, PUBLIC_URL)
    first.silence()
    assert OLD_PROMPT in first.heard_since_input[-1]


def test_server_started_with_a_broken_file_serves_the_last_stored_version(config, clock, app,
                                                                          flows_dir):
    marker = f"For billing, press 1 ({uuid.uuid4().hex[:8]})."
    edit_demo(flows_dir, OLD_PROMPT, marker)
    app.extensions["ivr"].registry.refresh(force=True)  # this good version is stored
    edit_demo(flows_dir, "start: check_hours", "start: nowhere")
    restarted = create_app(config, clock=clock)
    call = SimulatedCall(InProcessTransport(restarted, PUBLIC_URL), AUTH_TOKEN)
    call.dial()
    call.expect_heard(marker)


def test_concurrent_first_requests_all_find_the_flow(config, clock, caplog):
    """Threads racing the first flow load must wait for it, not see an empty registry."""
    import threading

    from ivr_server.registry import FlowRegistry

    app = create_app(config, clock=clock)
    services = app.extensions["ivr"]
    registry = FlowRegistry(config.flows_dir, redis_client=services.redis,
                            session_factory=services.session_factory,
                            prefix=config.redis.key_prefix, reload_interval=60)
    found, errors = [], []
    start = threading.Barrier(8)

    def first_request() -> None:
        start.wait()
        try:
            found.append(registry.current("company").name)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and found == ["company"] * 8
    assert "serving stored version" not in caplog.text  # every thread got the file's flow
