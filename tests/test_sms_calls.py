"""Texts around calls: a queued caller gets their wait in writing, replies CALLBACK, STOP or a
survey score, and is asked how it went once after the call, not every time."""

from __future__ import annotations

import datetime as dt

import phonenumbers
import pytest

from ivr_server import create_app
from ivr_server.simulator import SimulatedCall, new_sid
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport

from .conftest import AUTH_TOKEN, OPEN_HOURS, PUBLIC_URL, sign
from .helpers import call_events, fresh_number
from .test_queue_calls import CALLERS, QUEUE_FLOW, clock, seed_history

__all__ = ["clock"]  # the queue tests' clock fixture, which follows the caller

MOBILE = phonenumbers.format_number(phonenumbers.example_number_for_type(
    "US", phonenumbers.PhoneNumberType.MOBILE), phonenumbers.PhoneNumberFormat.E164)


def caller_number() -> str:
    """A mobile number of its own per test (the database outlives a run)."""
    return fresh_number(MOBILE[2:5])


@pytest.fixture
def sms_app(config, clock, flows_dir):  # noqa: ANN001, ANN201
    (flows_dir / "queued.yaml").write_text(QUEUE_FLOW)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={CALLERS: "queued"}, settings=config.flows.settings)
           .with_section("sms", from_number="+15005550006", company="Acme",
                         wait_threshold=60, wait_min_change=120, wait_max_messages=2))
    app = create_app(cfg, clock=clock)
    state = app.extensions["ivr"].queues
    state.set_agents("support", 1, OPEN_HOURS.timestamp() - 4000)
    seed_history(state)
    for i in range(5):  # and a line of callers ahead of anyone calling now
        state.arrive("support", f"CAahead{i}", OPEN_HOURS.timestamp() - 100 + i)
    return app


def queued(app, clock, number: str) -> SimulatedCall:  # noqa: ANN001
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to=CALLERS,
                         from_=number, queues=SimulatedQueues())
    clock.call = call
    call.dial()
    call.press("1")
    assert call.waiting_for == "queue"
    return call


def texts(app, call: SimulatedCall) -> list:  # noqa: ANN001
    return [m for m in app.extensions["ivr"].sms_store.messages_for_call(call.call_sid)]


def reply(app, number: str, body: str, signed: bool = True):  # noqa: ANN001, ANN201
    params = {"MessageSid": new_sid("SM"), "AccountSid": "AC" + "1" * 32, "From": number,
              "To": "+15005550006", "Body": body}
    headers = {"X-Twilio-Signature": sign(PUBLIC_URL + "/sms/incoming", params)} if signed \
        else {}
    return app.test_client().post("/sms/incoming", data=params, headers=headers,
                                  base_url=PUBLIC_URL)


def test_a_queued_caller_gets_their_wait_in_writing_once_then_only_news(sms_app, clock):
    call = queued(sms_app, clock, caller_number())
    [first] = texts(sms_app, call)
    assert first.kind == "wait_estimate" and first.status == "queued"
    assert first.body.startswith("You're number 1 in line for Acme. Expected wait: about ")
    assert "Reply CALLBACK" in first.body
    call.wait(300)
    assert len(texts(sms_app, call)) <= 2, "at most wait_max_messages per call"
    assert any(e.kind == "sms_queued" for e in call_events(sms_app, call.call_sid))


def test_replying_callback_takes_the_caller_out_of_the_queue(sms_app, clock):
    number = caller_number()
    call = queued(sms_app, clock, number)
    answer = reply(sms_app, number, "callback")
    assert answer.status_code == 200 and "call you back" in answer.get_data(as_text=True)
    call.wait(60)  # at the next wait turn the caller leaves
    call.expect_heard("Sorry, everyone is busy.")
    kinds = [e.kind for e in call_events(sms_app, call.call_sid)]
    assert "callback_requested" in kinds and "queue_leave" in kinds


def test_stop_opts_out_for_good_and_is_confirmed_once(sms_app, clock):
    number = caller_number()
    first = reply(sms_app, number, "STOP")
    assert "unsubscribed" in first.get_data(as_text=True)
    again = reply(sms_app, number, "stop")
    assert "<Message>" not in again.get_data(as_text=True)
    call = queued(sms_app, clock, number)
    assert [m.status for m in texts(sms_app, call)] == ["refused"]
    reply(sms_app, number, "START")
    assert not sms_app.extensions["ivr"].sms_store.opted_out(number)


def test_one_survey_after_a_completed_call_then_none_for_a_month(sms_app, clock):
    number = caller_number()
    call = queued(sms_app, clock, number)
    call.taken_by_agent(120)
    assert call.ended
    assert [m.kind for m in texts(sms_app, call)][-1] == "survey_question"
    national = phonenumbers.format_number(phonenumbers.parse(number),
                                          phonenumbers.PhoneNumberFormat.NATIONAL)
    second = queued(sms_app, clock, national)  # the same person, formatted differently
    second.taken_by_agent(120)
    assert "survey_question" not in [m.kind for m in texts(sms_app, second)]
    thanks = reply(sms_app, number, "5")
    assert "thank you" in thanks.get_data(as_text=True)
    answer = [e for e in call_events(sms_app, call.call_sid) if e.kind == "survey_answer"]
    assert answer and answer[0].data == {"score": 5}


def test_a_short_call_is_not_surveyed(sms_app, clock):
    call = queued(sms_app, clock, caller_number())
    call.hangup()
    assert "survey_question" not in [m.kind for m in texts(sms_app, call)]


def test_an_unknown_reply_gets_help_at_most_once_a_day(sms_app):
    number = caller_number()
    assert "didn't understand" in reply(sms_app, number, "what?").get_data(as_text=True)
    assert "<Message>" not in reply(sms_app, number, "hello?").get_data(as_text=True)


def test_delivery_status_callbacks_update_the_message(sms_app, clock):
    call = queued(sms_app, clock, caller_number())
    [message] = texts(sms_app, call)
    store = sms_app.extensions["ivr"].sms_store
    sid = new_sid("SM")
    store.update_message(message.id, status="sent", at=OPEN_HOURS, message_sid=sid)
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC" + "1" * 32}
    resp = sms_app.test_client().post(
        "/sms/status", data=params, base_url=PUBLIC_URL,
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms/status", params)})
    assert resp.status_code == 204
    assert store.message(message.id).status == "delivered"


def test_unsigned_or_forged_sms_webhooks_get_403(sms_app):
    assert reply(sms_app, MOBILE, "STOP", signed=False).status_code == 403
    forged = sms_app.test_client().post("/sms/status", data={"MessageSid": "SMx"},
                                        headers={"X-Twilio-Signature": "AAAA"},
                                        base_url=PUBLIC_URL)
    assert forged.status_code == 403


def test_surveys_wait_thirty_days(sms_app, clock):
    store = sms_app.extensions["ivr"].sms_store
    number = caller_number()
    store.start_survey(number, new_sid("CA"), OPEN_HOURS - dt.timedelta(days=31))
    call = queued(sms_app, clock, number)
    call.taken_by_agent(120)
    assert [m.kind for m in texts(sms_app, call)][-1] == "survey_question"


def test_a_flow_writes_its_own_texts_and_a_text_too_long_is_not_sent(config, clock, flows_dir):
    own = QUEUE_FLOW.replace("start: menu\n", "start: menu\nsms_templates:\n"
                             "  wait_estimate: \"{{ company }}: {{ position }}. en fila, "
                             "espera {{ wait }}.\"\n")
    (flows_dir / "queued.yaml").write_text(own)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={CALLERS: "queued"}, settings=config.flows.settings)
           .with_section("sms", from_number="+15005550006", company="Acme", wait_threshold=60,
                         templates={"survey_question": "x" * 400}))
    app = create_app(cfg, clock=clock)
    app.extensions["ivr"].queues.set_agents("support", 1, OPEN_HOURS.timestamp() - 4000)
    seed_history(app.extensions["ivr"].queues)
    for i in range(5):
        app.extensions["ivr"].queues.arrive("support", f"CAq{i}", OPEN_HOURS.timestamp() - 50)
    call = queued(app, clock, caller_number())
    [first] = texts(app, call)
    assert first.body.startswith("Acme: 1. en fila, espera about")
    call.taken_by_agent(120)
    assert "survey_question" not in [m.kind for m in texts(app, call)]
    errors = [e for e in call_events(app, call.call_sid) if e.kind == "sms_error"]
    assert errors and "segments" in errors[0].data["error"]
