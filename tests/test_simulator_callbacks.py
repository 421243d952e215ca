"""The simulator's side of callbacks: keys pressed while on hold, and calls the server places
through Twilio's REST API (answered, or never connected).

A scripted transport hands the simulator fixed TwiML documents, as in test_simulator.py, to
pin down what Twilio sends and in which order.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ivr_server.simulator import (
    SimulatedCall,
    SimulatedQueues,
    SimulatorError,
    answer_outbound,
    fail_outbound,
)
from ivr_server.simulator.script import read_step, run_step
from tests.scripted_transport import Scripted

TOKEN = "12345678901234567890123456789012"
BASE = "https://ivr.example.test"
QUEUE_PARAMS = ("QueuePosition", "QueueTime", "CurrentQueueSize", "QueueSid", "AvgQueueTime")


# -- keys pressed while on hold ------------------------------------------------------------

ENQUEUE = ('<Response><Enqueue action="/voice/queue/result" waitUrl="/voice/queue/wait?q=support">'
           'support</Enqueue></Response>')
PROMPT = "Press 1 for a call back."  # 6 words: 2.4 s at the simulator's speaking rate
HOLD_MENU = ('<Response><Say>You are caller 2.</Say><Gather numDigits="1" timeout="5" '
             f'action="keys?from=wait"><Say>{PROMPT}</Say></Gather>'
             '<Play>https://cdn.example.test/music.mp3</Play></Response>')
LEAVE = "<Response><Say>We will call you back.</Say><Leave/></Response>"
RESULT = "<Response><Say>Goodbye.</Say><Hangup/></Response>"


def queued(pages: Mapping[str, str | tuple[int, str, str]], *,
           ahead: int = 0) -> tuple[SimulatedCall, Scripted, SimulatedQueues]:
    """A caller on hold in `support`, behind `ahead` others."""
    transport, queues = Scripted({"/voice/incoming": ENQUEUE, **pages}), SimulatedQueues()
    for i in range(ahead):
        SimulatedCall(transport, TOKEN, from_=f"+1415555010{i}",  # type: ignore[arg-type]
                      queues=queues).dial()
    call = SimulatedCall(transport, TOKEN, from_="+14155550199", queues=queues)  # type: ignore[arg-type]
    call.dial()
    assert call.waiting_for == "queue"
    return call, transport, queues


def test_pressing_1_on_hold_posts_the_gather_action_and_leave_continues_the_call() -> None:
    call, t, queues = queued({"/voice/queue/wait": HOLD_MENU, "/voice/queue/keys": LEAVE,
                              "/voice/queue/result": RESULT}, ahead=1)
    # what is said at once on joining, the Gather's spoken prompt included: it listens now
    assert call.heard == ["You are caller 2.", PROMPT]

    assert call.press("1") == ["We will call you back.", "Goodbye."]

    (keys,) = t.to("/voice/queue/keys")
    # resolved against the wait URL, not the document that enqueued the caller
    assert keys["method"] == "POST" and keys["url"] == f"{BASE}/voice/queue/keys?from=wait"
    p = keys["params"]
    assert (p["Digits"], p["CallSid"], p["CallStatus"]) == ("1", call.call_sid, "in-progress")
    assert all(name in p for name in QUEUE_PARAMS)
    assert (p["QueuePosition"], p["CurrentQueueSize"]) == ("2", "2")
    assert p["QueueSid"] == queues.sid("support") and p["QueueTime"] == "4"  # 1.6 + 2.4 + 0.5
    assert t.signed(keys, TOKEN)
    (result,) = [r for r in t.to("/voice/queue/result") if r["params"]["CallSid"] == call.call_sid]
    assert (result["params"]["QueueResult"], result["params"]["QueueSid"]) == (
        "leave", queues.sid("support"))
    assert queues.size("support") == 1  # only the caller ahead is still waiting
    assert call.ended and call.status == "completed"
    assert t.sent[-1]["path"] == "/voice/status"


def test_keys_pressed_before_the_hold_gather_plays_go_to_it_once_it_has() -> None:
    wait = ('<Response><Play>https://cdn.example.test/music.mp3</Play><Gather numDigits="1" '
            'action="/voice/queue/keys" method="GET"><Say>Press 1 to leave.</Say></Gather>'
            '</Response>')
    call, t, _ = queued({"/voice/queue/wait": wait, "/voice/queue/keys": LEAVE,
                         "/voice/queue/result": RESULT})
    assert call.heard == []  # hold music first: nothing is said at once
    call.press("1")
    assert call.heard[:2] == ["https://cdn.example.test/music.mp3", "Press 1 to leave."]
    (keys,) = t.to("/voice/queue/keys")
    assert keys["method"] == "GET" and keys["params"] == {}  # GET: all in the signed query
    assert keys["query"]["Digits"] == "1" and keys["query"]["QueueTime"] == "7"  # 5 + 2 s
    assert all(name in keys["query"] for name in QUEUE_PARAMS) and t.signed(keys, TOKEN)
    assert call.ended


def test_a_script_presses_keys_on_hold_through_the_same_path() -> None:
    call, t, _ = queued({"/voice/queue/wait": HOLD_MENU,
                         "/voice/queue/keys": "<Response><Say>Noted.</Say></Response>"})
    run_step(call, read_step({"press": 1}))
    assert call.heard_since_input == ["Noted."] and call.waiting_for == "queue"
    assert len(t.to("/voice/queue/keys")) == 1


def test_with_nothing_pressed_the_hold_gather_times_out_and_the_hold_goes_on() -> None:
    wait = ('<Response><Gather numDigits="1" timeout="7" action="/voice/queue/keys">'
            f'<Say>{PROMPT}</Say></Gather><Pause length="20"/></Response>')
    call, t, _ = queued({"/voice/queue/wait": wait})
    assert call.heard == [PROMPT] and call.elapsed == pytest.approx(2.4)

    assert call.wait(5) == []
    assert call.elapsed == pytest.approx(2.4 + 7)  # its timeout passed; nothing was posted
    assert call.wait(25) == [PROMPT]  # the pause, then the wait URL again, then its timeout
    assert call.elapsed == pytest.approx(2 * (2.4 + 7) + 20)
    assert not t.to("/voice/queue/keys") and call.waiting_for == "queue"
    assert [r["params"]["QueueTime"] for r in t.to("/voice/queue/wait")] == ["0", "29"]


def test_a_hold_gather_with_action_on_empty_result_posts_empty_digits_when_it_times_out() -> None:
    wait = ('<Response><Gather numDigits="1" timeout="3" actionOnEmptyResult="true" '
            f'action="/voice/queue/keys"><Say>{PROMPT}</Say></Gather>'
            '<Say>Never heard.</Say></Response>')
    call, t, _ = queued({"/voice/queue/wait": wait,
                         "/voice/queue/keys": "<Response><Pause length='60'/></Response>"})
    call.wait(1)
    (keys,) = t.to("/voice/queue/keys")
    assert keys["params"]["Digits"] == "" and keys["params"]["QueueTime"] == "5"  # 2.4 + 3
    assert call.elapsed == pytest.approx(2.4 + 3)
    call.wait(10)
    assert "Never heard." not in call.heard  # the action's answer replaced the rest
    assert call.elapsed == pytest.approx(2.4 + 3 + 60)


@pytest.mark.parametrize("wait", [
    "<Response><Play>https://cdn.example.test/music.mp3</Play></Response>",
    "<Response><Redirect>/voice/queue/wait</Redirect><Gather><Say>Hi.</Say></Gather></Response>",
    None,  # no waitUrl: Twilio's own music
])
def test_pressing_keys_on_hold_with_no_gather_listening_is_refused(wait: str | None) -> None:
    pages = {"/voice/queue/wait": wait} if wait else {
        "/voice/incoming": "<Response><Enqueue>support</Enqueue></Response>"}
    call, _, _ = queued(pages)
    with pytest.raises(SimulatorError, match="nothing is listening for keys while on hold"):
        call.press("1")
    assert call.waiting_for == "queue"


# -- calls placed through the REST API -------------------------------------------------------

ANSWER = ('<Response><Gather numDigits="1" action="/voice/callback/choice">'
          '<Say>This is your call back from Acme.</Say><Say>Press 1 to talk to us.</Say>'
          '</Gather></Response>')


def calls_json(**fields: str | list[str]) -> dict[str, list[str]]:
    """A Calls.json form as the contract mock keeps it (SeenRequest.form): lists of values."""
    form = {"To": "+14155550100", "From": "+15005550006",
            "Url": f"{BASE}/voice/callback/answer?cb=42", "Method": "POST",
            "StatusCallback": f"{BASE}/voice/callback/status?cb=42",
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
            "StatusCallbackMethod": "POST", "Timeout": "30", **fields}
    return {k: v if isinstance(v, list) else [v] for k, v in form.items()}


def test_an_answered_callback_reports_progress_runs_its_twiml_and_reports_completion() -> None:
    t = Scripted({"/voice/callback/answer": ANSWER})
    call = answer_outbound(t, TOKEN, calls_json(MachineDetection="Enable"),  # type: ignore[arg-type]
                           answered_by="human")
    assert call.heard == ["This is your call back from Acme.", "Press 1 to talk to us."]
    assert call.waiting_for == "input" and (call.from_, call.to) == ("+15005550006",
                                                                     "+14155550100")
    call.hangup()

    assert [(r["path"], r["params"]["CallStatus"]) for r in t.sent] == [
        ("/voice/callback/status", "initiated"), ("/voice/callback/status", "ringing"),
        ("/voice/callback/status", "in-progress"), ("/voice/callback/answer", "in-progress"),
        ("/voice/callback/status", "completed")]
    for r in t.sent:
        p = r["params"]
        assert t.signed(r, TOKEN) and r["query"] == {"cb": "42"} and r["method"] == "POST"
        assert (p["Direction"], p["ApiVersion"], p["CallSid"]) == (
            "outbound-api", "2010-04-01", call.call_sid)
        assert (p["From"], p["To"]) == ("+15005550006", "+14155550100")
    assert ["AnsweredBy" in r["params"] for r in t.sent] == [False, False, False, True, True]
    answered, completed = t.sent[3]["params"], t.sent[4]["params"]
    assert answered["AnsweredBy"] == completed["AnsweredBy"] == "human"
    assert t.sent[4]["url"] == f"{BASE}/voice/callback/status?cb=42"
    assert completed["CallDuration"].isdigit()
    assert [r["params"]["SequenceNumber"] for r in t.to("/voice/callback/status")] == [
        "0", "1", "2", "3"]


def test_without_machine_detection_there_is_no_answered_by_and_only_asked_events_are_sent(
        ) -> None:
    t = Scripted({"/voice/callback/answer": ANSWER,
                  "/voice/callback/choice": "<Response><Say>Connecting.</Say></Response>"})
    call = answer_outbound(t, TOKEN, calls_json(  # type: ignore[arg-type]
        StatusCallbackEvent="answered", StatusCallbackMethod="GET", Method="GET"))
    assert call.press("1") == ["Connecting."]  # then the server's TwiML ends: it hangs up
    assert call.ended and call.status == "completed"

    assert [(r["method"], r["path"]) for r in t.sent] == [
        ("GET", "/voice/callback/status"), ("GET", "/voice/callback/answer"),
        ("POST", "/voice/callback/choice"), ("GET", "/voice/callback/status")]
    assert not any("AnsweredBy" in {**r["params"], **r["query"]} for r in t.sent)
    answered, final = t.to("/voice/callback/status")
    assert answered["query"]["CallStatus"] == "in-progress"
    # GET: the parameters join the StatusCallback's own query, and the signature covers all
    assert final["url"].startswith(f"{BASE}/voice/callback/status?cb=42&")
    assert (final["query"]["cb"], final["query"]["CallStatus"]) == ("42", "completed")
    assert final["query"]["Direction"] == "outbound-api" and t.signed(final, TOKEN)


@pytest.mark.parametrize(("status", "statuses"), [
    ("busy", ["initiated", "ringing", "busy"]),
    ("no-answer", ["initiated", "ringing", "no-answer"]),
    ("failed", ["initiated", "failed"]),  # a failed call never rang
])
def test_an_unconnected_callback_only_reports_its_status(status: str,
                                                          statuses: list[str]) -> None:
    t = Scripted({})
    fail_outbound(t, TOKEN, calls_json(), status)  # type: ignore[arg-type]
    assert not t.to("/voice/callback/answer")
    assert [r["params"]["CallStatus"] for r in t.sent] == statuses
    final = t.sent[-1]
    assert (final["params"]["CallDuration"], final["params"]["Direction"]) == (
        "0", "outbound-api")
    assert final["url"] == f"{BASE}/voice/callback/status?cb=42" and t.signed(final, TOKEN)


def test_a_callback_with_no_events_named_reports_only_its_end() -> None:
    t = Scripted({})
    fail_outbound(t, TOKEN, calls_json(StatusCallbackEvent=[]), "busy")  # type: ignore[arg-type]
    assert [r["params"]["CallStatus"] for r in t.sent] == ["busy"]


def test_a_callback_url_on_another_host_is_refused() -> None:
    t = Scripted({})
    with pytest.raises(SimulatorError, match=r"https://elsewhere\.example\.com/x.*"
                                             r"https://ivr\.example\.test"):
        answer_outbound(t, TOKEN, calls_json(Url="https://elsewhere.example.com/x"))  # type: ignore[arg-type]
    assert t.sent == []


def test_a_status_callback_answering_an_error_fails_loudly() -> None:
    t = Scripted({"/voice/callback/status": (500, "boom", "text/plain")})
    with pytest.raises(SimulatorError, match="status callback answered HTTP 500"):
        answer_outbound(t, TOKEN, calls_json())  # type: ignore[arg-type]


def test_answered_by_must_be_what_the_detection_mode_can_tell() -> None:
    t = Scripted({"/voice/callback/answer": ANSWER})
    with pytest.raises(ValueError, match="never machine_end_beep"):
        answer_outbound(t, TOKEN, calls_json(MachineDetection="Enable"),  # type: ignore[arg-type]
                        answered_by="machine_end_beep")
    call = answer_outbound(t, TOKEN, calls_json(  # type: ignore[arg-type]
        MachineDetection="DetectMessageEnd"), answered_by="machine_end_beep")
    assert t.to("/voice/callback/answer")[-1]["params"]["AnsweredBy"] == "machine_end_beep"
    assert call.waiting_for == "input"
