"""Whatever breaks, the caller gets valid TwiML and a way to a person, never a 500."""

from __future__ import annotations

import uuid

import pytest

from ivr_server import create_app
from ivr_server.calllog import CallLog
from ivr_server.db import make_engine, make_session_factory
from ivr_server.redis_conn import connect
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport
from ivr_server.simulator.twiml_reader import parse_twiml

from .conftest import AUTH_TOKEN, PUBLIC_URL, call_params
from .helpers import call_events, call_row

DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/test"
RUNTIME_BROKEN_FLOW = """\
flow: runtime
human: "+15005550009"
start: hello
nodes:
  hello:
    type: say
    text: "You have called {{ 100 // caller.previous_calls }} times"
    next: bye
  bye:
    type: hangup
"""


def assert_safe_path(body: bytes | str, to: str | None = "+15005550006") -> None:
    text = body.decode() if isinstance(body, bytes) else body
    verbs = parse_twiml(text)  # raises on anything Twilio could not play
    assert verbs, text
    assert "having trouble" in text
    if to:
        assert f"<Number>{to}</Number>" in text


def test_redis_down_sends_the_caller_to_the_flows_human(config, clock):
    app = create_app(config, clock=clock, redis_client=connect(DEAD_REDIS))
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN)
    call.dial()
    call.expect_heard("having trouble right now. Connecting you")
    assert call.transferred_to is not None
    assert call.transferred_to.target == "+15005550006"


def test_configured_fallback_number_wins_over_the_flows_human(config, clock):
    cfg = config.with_section("fallback", number="+15005550001")
    app = create_app(cfg, clock=clock, redis_client=connect(DEAD_REDIS))
    resp = app.test_client().post("/voice/incoming", data=call_params(), base_url=PUBLIC_URL,
                                  headers=_signed("/voice/incoming", call_params()))
    assert resp.status_code == 200
    assert_safe_path(resp.data, to="+15005550001")


def test_database_down_calls_go_on_and_the_log_catches_up(config, clock, database_url):
    app = create_app(config.with_section("database", url=DEAD_DATABASE), clock=clock)
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN)
    call.dial()
    call.expect_heard("For billing, press 1")
    call.press("3")
    call.expect_heard("customer care team")
    call.answer_dial()
    services = app.extensions["ivr"]
    recovered = CallLog(make_session_factory(make_engine(database_url)), services.redis,
                        config.redis.key_prefix)
    assert recovered.flush_backlog() > 0
    kinds = [e.kind for e in call_events(database_url, call.call_sid)]
    assert "key" in kinds and "transfer" in kinds and "status" in kinds
    assert call_row(database_url, call.call_sid).outcome == "transferred"


def test_action_url_for_an_unknown_call_gets_the_safe_path(post):
    resp = post("/voice/input?node=main_menu&turn=1", call_params("CA" + "9" * 32, Digits="1"))
    assert resp.status_code == 200
    assert_safe_path(resp.data)


@pytest.mark.parametrize("path, params", [
    ("/voice/incoming", {}),
    ("/voice/incoming", {"CallSid": "../../etc/passwd"}),
    ("/voice/input?node=main_menu&turn=abc", call_params(Digits="1")),
    ("/voice/input", call_params(Digits="\u202e" * 5000)),
    ("/voice/dial?node=x&turn=1", call_params(DialCallStatus="\x00")),
    ("/voice/status", {"CallStatus": "completed"}),
])
def test_missing_or_garbage_parameters_still_get_valid_twiml(post, path, params):
    resp = post(path, params)
    assert resp.status_code == 200
    parse_twiml(resp.get_data(as_text=True))


def test_engine_error_is_logged_with_the_node_and_the_caller_reaches_a_human(
        config, clock, flows_dir, database_url):
    (flows_dir / "runtime.yaml").write_text(RUNTIME_BROKEN_FLOW)
    cfg = config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                              numbers={"+15005550100": "runtime"},
                              settings=config.flows.settings)
    app = create_app(cfg, clock=clock)
    first_timer = f"+1415{uuid.uuid4().int % 10**7:07d}"  # previous_calls must be 0
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to="+15005550100",
                         from_=first_timer)
    call.dial()
    call.expect_heard("having trouble")
    assert call.transferred_to.target == "+15005550009"
    errors = [e for e in call_events(app, call.call_sid) if e.kind == "error"]
    assert errors and "runtime" in errors[0].data["error"] and "hello" in errors[0].data["error"]


def test_crm_failure_takes_the_lookup_fallback(place_call, crm_stub):
    crm_stub.fail_with = 500
    call = place_call("+14155550123")
    call.expect_heard("Thanks for calling Acme.")
    call.expect_heard("For billing, press 1")


def test_slow_crm_is_cut_off_at_the_timeout(config, clock, crm_stub):
    crm_stub.customers["+14155550123"] = {"first_name": "Ada"}
    crm_stub.delay = 1.0
    app = create_app(config.with_section("lookup", max_timeout=0.2), clock=clock)
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, from_="+14155550123")
    call.dial()
    call.expect_not_heard("Ada")
    call.expect_heard("Thanks for calling Acme.")


def _signed(path: str, params: dict[str, str]) -> dict[str, str]:
    from .conftest import sign

    return {"X-Twilio-Signature": sign(PUBLIC_URL + path, params)}


def test_oversized_crm_answer_counts_as_a_failed_lookup(place_call, crm_stub):
    crm_stub.customers["+14155550123"] = {"first_name": "Ada", "notes": "x" * 300_000}
    call = place_call("+14155550123")
    call.expect_not_heard("Ada")
    call.expect_heard("Thanks for calling Acme.")
