"""A call's timeline and story from its rows alone: no database, no web server."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr_server.admin.timeline import build, entries, offset, story
from ivr_server.admin.timeline_text import human_duration, told
from ivr_server.models import Call, CallbackRequest, CallEvent, SmsMessage, SmsSurvey

T0 = dt.datetime(2026, 11, 24, 18, 0, tzinfo=dt.UTC)  # 13:00 in New York
NEW_YORK = ZoneInfo("America/New_York")


def call(outcome: str | None = "abandoned", status: str = "completed") -> Call:
    return Call(call_sid="CA1", from_number="+14155550123", started_at=T0, outcome=outcome,
                status=status, flow="company", flow_version="abc")


def ev(seconds: float, kind: str, node: str | None = None, /, **data: Any) -> CallEvent:
    return CallEvent(call_sid="CA1", at=T0 + dt.timedelta(seconds=seconds), node=node,
                     kind=kind, data=data)


def sms(seconds: float, body: str, direction: str = "outbound", kind: str = "wait_estimate",
        status: str = "delivered") -> SmsMessage:
    return SmsMessage(call_sid="CA1", direction=direction, kind=kind, body=body, status=status,
                      to_number="+14155550123", from_number="+15005550006",
                      created_at=T0 + dt.timedelta(seconds=seconds))


def texts(items: list) -> list[tuple[str, str, str]]:
    return [(e.offset, e.label, e.text) for e in items]


BILLING_THEN_HOLD = [
    ev(0, "call_started", flow="company", version="abc"),
    ev(1, "prompt", "main_menu", text="For billing, press 1."),
    ev(8, "key", "main_menu", digits="1", choice="billing"),
    ev(8, "route", "main_menu", to="account_number", reason="pressed 1"),
    ev(20, "collected", "account_number", var="account_number", digits="****5674"),
    ev(21, "queue_joined", "billing_q", queue="billing",
       predicted={"wait": 200, "p10": 150, "p90": 300}),
    ev(391, "queue_result", "billing_q", queue="billing", result="hangup", waited=370,
       predicted={"wait": 200, "p10": 150, "p90": 300}),
    ev(391, "queue_left", "billing_q", result="hangup", waited=370),
    ev(391, "callback_requested", callback=4, reason="abandoned", queue="billing",
       number="********0123"),
    ev(391, "callback_scheduled", callback=4, state="scheduled",
       due="2026-11-24T19:20:00+00:00", why="on time"),
    ev(4800, "callback_dialing", callback=4, attempt=1, token="secret"),
    ev(4830, "callback_retry", callback=4, attempt=1, outcome="no-answer"),
    ev(5400, "callback_dialing", callback=4, attempt=2, token="secret"),
    ev(5410, "callback_answered", callback=4, attempt=2, sid="CA2"),
]


def test_the_story_says_in_one_line_why_the_caller_ended_where_they_did():
    assert story(call(), BILLING_THEN_HOLD, zone=NEW_YORK) == (
        "Pressed 1 (billing) → account number entered → joined queue billing, told about "
        "3–5 min, waited 6 min 10 s, hung up → abandoned; callback booked for 14:20, "
        "answered on attempt 2.")


def test_the_timeline_lists_each_step_with_its_time_from_the_start_of_the_call():
    lines = texts(entries(call(), BILLING_THEN_HOLD, zone=NEW_YORK))
    assert lines[:5] == [
        ("+0:00", "Call started", "Flow company version abc"),
        ("+0:01", "Prompt", "“For billing, press 1.”"),
        ("+0:08", "Key", "Pressed 1 → billing"),
        ("+0:08", "Route", "→ account_number (pressed 1)"),
        ("+0:20", "Entered", "Account number: ****5674")]
    assert ("+0:21", "Joined queue",
            "billing: predicted 2 min 30 s–5 min (median 3 min 20 s)") in lines
    assert ("+6:31", "Left queue", "billing: caller hung up; waited 6 min 10 s, predicted "
            "2 min 30 s–5 min (median 3 min 20 s)") in lines
    assert ("+6:31", "Callback scheduled", "For 14:20 (on time)") in lines
    assert ("+1:30:10", "Callback answered", "Attempt 2: answered") in lines
    assert ("+1:20:30", "Callback retry", "Attempt 1: no luck, will retry (no-answer)") in lines
    assert not any(label == "Left queue" and "after" in text and "predicted" not in text
                   for _, label, text in lines), "the engine's own queue_left is not repeated"


def test_texts_are_merged_in_time_and_not_listed_twice():
    events = [ev(0, "call_started"), ev(30, "queue_joined", queue="q", predicted=None),
              ev(31, "sms_queued", kind="wait_estimate", body="You're number 2"),
              ev(90, "sms_queued", kind="wait_update", body="Not stored"),
              ev(200, "sms_reply", kind="callback")]
    messages = [sms(31, "You're number 2"), sms(199, "CALLBACK", "inbound", "reply",
                                                "received")]
    lines = texts(entries(call(), events, messages))
    assert lines[1:] == [
        ("+0:30", "Joined queue", "q: no prediction"),
        ("+0:31", "Text sent", "“You're number 2” (wait estimate, delivered)"),
        ("+1:30", "Text queued", "wait update: “Not stored”"),
        ("+3:19", "Text received", "“CALLBACK”"),
        ("+3:20", "Text reply", "Understood as callback")]


def test_the_survey_answer_comes_from_the_survey_when_no_event_says_it():
    survey = SmsSurvey(call_sid="CA1", number="+14155550123", asked_at=T0,
                       score=2, answered_at=T0 + dt.timedelta(hours=2))
    result = build(call("transferred"), [ev(0, "call_started")], survey=survey)
    assert texts(result.entries)[-1] == ("+2:00:00", "Survey", "Scored the call 2 out of 5")
    assert result.story == "Made no choice → transferred; rated the call 2/5."
    answered = [ev(0, "call_started"), ev(7200, "survey_answer", score=2)]
    again = build(call("transferred"), answered, survey=survey)
    assert [e.kind for e in again.entries].count("survey_answer") == 1
    assert "survey" not in [e.kind for e in again.entries]
    assert again.story.count("rated") == 1


def test_a_callback_whose_steps_were_not_logged_is_still_shown():
    row = CallbackRequest(id=9, number="+14155550123", queue="billing", state="scheduled",
                          reason="offer", attempts=1, created_at=T0 + dt.timedelta(seconds=50),
                          due_at=T0 + dt.timedelta(minutes=30))
    result = build(call("callback"), [ev(0, "call_started")], callbacks=[row], zone=NEW_YORK)
    assert texts(result.entries)[-1] == (
        "+0:50", "Callback request", "#9 for billing: scheduled, 1 attempt(s), due 13:30")
    assert result.story == ("Made no choice → callback; callback booked, not reached after 1 "
                            "attempt(s), next try 13:30.")


def test_speech_shows_what_was_heard_how_sure_and_what_it_matched():
    events = [ev(5, "speech", "menu", text="billing please", confidence=0.874,
                 choice="billing", path="grammar"),
              ev(9, "speech", "menu", text="mumble", confidence=0.31, choice=None),
              ev(12, "speech", "menu", text="", confidence=0.0, error="timeout")]
    lines = texts(entries(call("self-served"), events))
    assert [t for _, _, t in lines] == ["Heard “billing please” (87% sure) → billing",
                                        "Heard “mumble” (31% sure) → no choice matched",
                                        "Nothing recognised: timeout"]
    assert story(call("self-served"), events) == (
        "Said “billing please” (billing, 87%) → said “mumble” (not understood, 31%) → "
        "speech not recognised → self-served.")


def test_repeated_mistakes_are_counted_not_repeated():
    events = [ev(3, "no_input", "main_menu"), ev(9, "no_match", "main_menu", digits="9"),
              ev(12, "key", "main_menu", digits="1", choice="billing"),
              ev(20, "invalid", "account_number", digits="****5678"),
              ev(30, "invalid", "account_number", digits="****1111"),
              ev(40, "collected", "account_number", var="account_number", digits="****5674"),
              ev(41, "transfer", "billing_desk", target="+15005550006"),
              ev(50, "transfer_ended", "billing_desk", status="busy", duration=0)]
    assert story(call("failed"), events) == (
        "No answer → pressed 9 (not a choice) → pressed 1 (billing) → account number "
        "refused ×2 → account number entered → transferred to billing desk → transfer busy "
        "→ failed.")


def test_a_caller_who_waits_too_long_or_asks_by_text_is_told_so():
    joined = ev(0, "queue_joined", "q", queue="front-desk",
                predicted={"wait": 30, "p10": 10, "p90": 50})
    too_long = [joined, ev(900, "queue_leave", "q", reason="max_wait", waited=900),
                ev(901, "queue_result", "q", queue="front-desk", result="leave", waited=900)]
    assert story(call("failed"), too_long) == (
        "Joined queue front-desk, told under a minute, waited 15 min, reached the longest "
        "wait allowed → failed.")
    by_text = [joined, ev(60, "callback_requested", via="sms"),
               ev(61, "queue_leave", "q", reason="callback", waited=61),
               ev(61, "queue_result", "q", queue="front-desk", result="leave", waited=61),
               ev(62, "callback_booked", "book", when="in about 5 minutes", merged=False)]
    assert story(call("callback"), by_text).startswith(
        "Joined queue front-desk, told under a minute, waited 1 min 1 s, asked for a "
        "callback by text → callback; callback booked")


def test_an_agent_answer_is_told_with_the_wait_once():
    events = [ev(0, "queue_joined", "q", queue="support", predicted=None),
              ev(130, "queue_answered", queue="support", waited=130, agent_call="CA9"),
              ev(400, "queue_result", "q", queue="support", result="bridged", waited=130)]
    assert story(call("transferred"), events) == (
        "Joined queue support, no wait estimate, answered after 2 min 10 s → transferred.")


@pytest.mark.parametrize("outcome, status, ending", [
    ("closed", "completed", "Called outside opening hours → closed."),
    ("abandoned", "completed", "Hung up before choosing anything → abandoned."),
    (None, "in-progress", "Made no choice → still in progress."),
    (None, "no-answer", "Made no choice → no-answer.")])
def test_a_call_with_no_choices_still_has_a_story(outcome, status, ending):
    assert story(call(outcome, status), [ev(0, "call_started")]) == ending


def test_a_failed_callback_says_why():
    events = [ev(0, "callback_requested", callback=1, reason="abandoned"),
              ev(10, "callback_failed", callback=1, why="number unreachable")]
    assert story(call(), events).endswith(
        "; callback booked, failed (number unreachable).")


def test_an_event_with_no_words_yet_shows_its_fields_but_not_secrets():
    [entry] = entries(call(), [ev(2, "brand_new_thing", "n", size=3, token="t0k", empty="")])
    assert (entry.label, entry.text) == ("Brand new thing", "size: 3")


@pytest.mark.parametrize("seconds, text", [
    (0, "+0:00"), (12, "+0:12"), (365, "+6:05"), (3723, "+1:02:03"), (-3, "-0:03")])
def test_offsets_count_from_the_start_of_the_call(seconds, text):
    assert offset(T0, T0 + dt.timedelta(seconds=seconds)) == text


@pytest.mark.parametrize("seconds, text", [
    (45, "45 s"), (60, "1 min"), (370, "6 min 10 s"), (3600, "1 h"), (3720, "1 h 2 min"),
    (None, "?"), ("12", "12 s")])
def test_durations_read_as_people_say_them(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize("predicted, text", [
    (None, "no wait estimate"), ({"wait": 20, "p10": 5, "p90": 55}, "told under a minute"),
    ({"wait": 200, "p10": 150, "p90": 300}, "told about 3–5 min"),
    ({"wait": 240, "p10": 200, "p90": 260}, "told about 4 min")])
def test_what_the_caller_was_told_comes_from_the_prediction(predicted, text):
    assert told(predicted) == text
