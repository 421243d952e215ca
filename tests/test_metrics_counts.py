"""What the counters and histograms on /metrics say after the real thing happened: a call's
end counted once however often Twilio reports it, an answer recognised by the real speech
model, callbacks placed, completed and given up, texts sent, refused by Twilio and reported
undelivered. Each figure is read from a scrape, before and after."""

from __future__ import annotations

import pytest
from flask import Flask

from ivr_server import metrics
from ivr_server.config import SmsConfig
from ivr_server.simulator import new_sid

from .callback_rig import CallbackRig
from .conftest import call_params
from .helpers import call_row, fresh_number
from .speech import audio_fixtures
from .test_callbacks import _accept_offer, rig  # noqa: F401 - the callback stories' fixture
from .test_observability import scrape, value
from .test_sms_sending import api, outbox, redis_client, store, work  # noqa: F401 - fixtures
from .test_speech_calls import recordings, spoken_app, spoken_call  # noqa: F401 - fixtures

phone_audio = audio_fixtures.phone_audio


def counted(app: Flask, name: str, **labels: str) -> float:
    return value(scrape(app), name, **labels)


def ends(body: str) -> float:
    """Every call end in a scrape, whatever its outcome."""
    return sum(value(body, "ivr_calls_ended_total", outcome=o) for o in metrics.OUTCOMES)


# -- a call's end --------------------------------------------------------------------------


@pytest.mark.parametrize("written_between", [True, False],
                         ids=["retry-after-the-end-was-written", "retry-in-the-same-batch"])
def test_a_call_end_twilio_reports_twice_is_counted_once(app, place_call, post,
                                                         written_between):
    services = app.extensions["ivr"]
    services.writer.drain()
    before = scrape(app)
    call = place_call(from_=fresh_number("415"))
    call.hangup()
    if written_between:
        services.writer.drain()
    # Twilio did not see our answer in time and posts the same end again.
    duration = str(int(call.elapsed))
    retry = call_params(call.call_sid, From=call.from_, CallStatus="completed",
                        CallDuration=duration)
    assert post("/voice/status", retry).status_code == 200

    row = call_row(app, call.call_sid)  # the call log written out
    assert (row.status, row.from_number, row.duration) == ("completed", call.from_,
                                                           int(duration))
    assert row.ended_at is not None and row.outcome in metrics.OUTCOMES
    after = scrape(app)
    assert ends(after) == ends(before) + 1
    assert value(after, "ivr_calls_ended_total", outcome=row.outcome) == \
        value(before, "ivr_calls_ended_total", outcome=row.outcome) + 1


# -- speech --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_recorded_answer_recognised_by_the_model_is_timed(
        spoken_app, recordings, phone_audio):  # noqa: F811
    server, _ = recordings
    server.next_audio = phone_audio.mulaw_wav("환불").read_bytes()
    before = scrape(spoken_app)
    call = spoken_call(spoken_app)
    call.record(seconds=1, finish_key="")
    call.expect_heard("Refunds.")

    after = scrape(spoken_app)
    name = "ivr_speech_recognition_seconds"
    assert value(after, f"{name}_count", path="record") == \
        value(before, f"{name}_count", path="record") + 1
    assert value(after, f"{name}_sum", path="record") > value(before, f"{name}_sum",
                                                              path="record")


# -- callbacks -----------------------------------------------------------------------------


def _callbacks(rig: CallbackRig, event: str) -> float:  # noqa: F811 - the fixture's name
    return counted(rig.app, "ivr_callbacks_total", event=event)


def test_a_callback_placed_and_answered_counts_placed_then_completed(rig):  # noqa: F811
    placed, completed = _callbacks(rig, "placed"), _callbacks(rig, "completed")
    _accept_offer(rig)
    rig.work()
    assert _callbacks(rig, "placed") == placed + 1
    assert _callbacks(rig, "completed") == completed

    callee = rig.answer(rig.next_placed())
    callee.taken_by_agent(60)
    callee.hangup()
    assert _callbacks(rig, "completed") == completed + 1
    assert _callbacks(rig, "placed") == placed + 1


def test_a_callback_nobody_answers_counts_each_attempt_placed_and_fails_once(rig):  # noqa: F811
    placed, failed = _callbacks(rig, "placed"), _callbacks(rig, "failed")
    _accept_offer(rig)
    for outcome, wait in (("busy", 300), ("no-answer", 900), ("no-answer", 0)):
        rig.work()
        rig.fail(rig.next_placed(), outcome)
        rig.clock.advance(wait)
    assert _callbacks(rig, "placed") == placed + 3
    assert _callbacks(rig, "failed") == failed + 1


# -- texts ---------------------------------------------------------------------------------


def _texts(app: Flask, event: str) -> float:
    return counted(app, "ivr_sms_messages_total", event=event)


def test_a_text_sent_then_reported_undelivered_counts_sent_and_undelivered(
        app, post, redis_client, store, api):  # noqa: F811
    sent, undelivered = _texts(app, "sent"), _texts(app, "undelivered")
    box = outbox(redis_client, store)
    message = box.send(kind="wait_estimate", to=fresh_number(), body="You're next.")
    work(box, store, api.base_url)
    row = store.message(message)
    assert row.status == "sent"
    assert _texts(app, "sent") == sent + 1

    sid = new_sid("SM")  # Twilio names each text once; Prism's made-up names repeat
    store.update_message(message, status="sent", at=row.updated_at, message_sid=sid)
    report = {"MessageSid": sid, "MessageStatus": "undelivered",
              "ErrorCode": "30003", "AccountSid": "AC" + "1" * 32}
    assert post("/sms/status", report).status_code == 204
    assert store.message(message).status == "undelivered"
    assert _texts(app, "undelivered") == undelivered + 1
    unknown = {**report, "MessageSid": new_sid("SM")}  # not ours: not counted
    assert post("/sms/status", unknown).status_code == 204
    assert _texts(app, "undelivered") == undelivered + 1


def test_a_text_twilio_refuses_counts_as_failed(app, redis_client, store, api):  # noqa: F811
    failed, sent = _texts(app, "failed"), _texts(app, "sent")
    box = outbox(redis_client, store, SmsConfig(from_number="", retry_intervals="0",
                                                messaging_service_sid="MG" + "0" * 32))
    message = box.send(kind="survey_question", to=fresh_number(), body="How did we do?")
    work(box, store, api.base_url, SmsConfig(messaging_service_sid="not-a-service"))
    assert store.message(message).status == "failed"
    assert _texts(app, "failed") == failed + 1
    assert _texts(app, "sent") == sent


def test_a_text_to_a_number_that_opted_out_after_it_was_queued_counts_as_refused(
        app, redis_client, store, api):  # noqa: F811
    refused, sent = _texts(app, "refused"), _texts(app, "sent")
    number = fresh_number()
    box = outbox(redis_client, store, SmsConfig(from_number="+15005550006"))
    message = box.send(kind="survey_question", to=number, body="How did we do?")
    store.set_opt_out(number, True, "STOP", app.extensions["ivr"].clock())  # STOP meanwhile
    work(box, store, api.base_url, SmsConfig(from_number="+15005550006"))
    assert store.message(message).status == "refused"
    assert _texts(app, "refused") == refused + 1
    assert _texts(app, "sent") == sent
