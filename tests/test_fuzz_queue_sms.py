"""Bad input on the queue, callback and SMS webhooks, in combinations: a caller on hold
whose wait, result, offer and connect requests carry odd values; callbacks answered and
ended with odd tokens and statuses; texts of any shape from any number. Answers are valid
TwiML (voice or messaging), nothing crashes, and the queue, callback and SMS records stay
sound (one request per caller, no caller held after they left).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from ivr_server.callback_store import active_key
from ivr_server.models import CallbackRequest
from ivr_server.simulator import new_sid

from . import fuzz_helpers as fz
from .callback_rig import new_york_number
from .fuzz_helpers import *  # noqa: F403  (the fixtures, used by name)
from .fuzz_helpers import FUZZ, NUMBERS, Twilio
from .test_fuzz_grid import dialing_callback

QUEUE = "front-desk"
QUEUE_RESULTS = ("bridged", "leave", "hangup", "queue-full", "redirected", "error",
                 "system-error")




def _on_hold(t: Twilio, number: str) -> str:
    sid = fz.start_call(t, From=number)
    fz.press(t, sid, "0")
    assert fz.where(t, sid)[0] == "front_desk"
    return sid


def _turn(t: Twilio, sid: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    """The call's own node and turn half the time, so the handler does its work."""
    session = t.app.extensions["ivr"].sessions.load(sid)
    node, turn = (session.node or "", str(session.turn)) if session else ("", "0")
    return st.one_of(st.just([("node", node), ("turn", turn)]),
                     fz.params({"node": [node, "main_menu"], "turn": [turn, "-1", "1.5"]}))


def test_a_caller_on_hold_survives_any_queue_webhook(twilio: Twilio, app, crashes,
                                                     place_call):
    number = new_york_number()
    services = app.extensions["ivr"]

    @FUZZ
    @given(data=st.data(), path=st.sampled_from(["/voice/queue/wait", "/voice/queue/result",
                                                "/voice/queue/offer", "/voice/queue/connect"]))
    def run(data: st.DataObject, path: str) -> None:
        sid = _on_hold(twilio, number)
        twilio.post("/voice/queue/wait", [("CallSid", sid), ("QueueTime", "100"),
                                          ("QueuePosition", "1")], data.draw(_turn(twilio, sid)))
        query = data.draw(_turn(twilio, sid))
        if path == "/voice/queue/connect":
            query = data.draw(fz.params({"queue": [QUEUE, "support", ""]}))
        fields = data.draw(fz.params({
            "CallSid": [sid, sid, "CA" + "5" * 32], "From": [number],
            "QueueTime": ["0", "95", "200"], "QueuePosition": ["1", "3"],
            "CurrentQueueSize": ["1", "4"], "QueueResult": QUEUE_RESULTS,
            "Digits": ["1", "2", "#"], "DequeingCallSid": ["CA" + "6" * 32]}))
        twilio.post(path, fields, query)
        crashes.check()
        session = services.sessions.load(sid)
        left = session is None or session.done or session.node != "front_desk"
        if left and path == "/voice/queue/result":
            assert not any(s == sid for s, _ in services.queues.waiting(QUEUE)), \
                "a caller who left the queue is still counted as waiting"

    run()
    with services.session_factory() as db:
        active = db.scalar(select(func.count()).select_from(CallbackRequest).where(
            CallbackRequest.active_key == active_key(number, QUEUE)))
    assert active <= 1, "one caller, one active callback per queue"
    fz.assert_state_sound(app, twilio.sids)
    fz.assert_demo_still_works(place_call)


def test_callback_calls_survive_any_answer_or_status(twilio: Twilio, app, crashes):
    store = app.extensions["ivr"].callbacks.store

    @FUZZ
    @given(data=st.data(), path=st.sampled_from(["/voice/callback/answer",
                                                "/voice/callback/status"]))
    def run(data: st.DataObject, path: str) -> None:
        cb, token = dialing_callback(twilio)
        sid = new_sid("CA")
        query = data.draw(fz.params({"cb": [str(cb), str(cb), "0", *NUMBERS[:4]],
                                  "token": [token, token, token[:-1], token.upper()]}))
        fields = data.draw(fz.params({
            "CallSid": [sid, sid, "CA"], "CallStatus": ["completed", "busy", "no-answer",
                                                        "failed", "in-progress"],
            "CallDuration": ["0", "33"], "AnsweredBy": ["human", "machine_start",
                                                        "machine_end_beep", "unknown"],
            "From": ["+15005550006"]}))
        twilio.post(path, fields, query)
        crashes.check()
        row = store.get(cb)
        assert row is not None and row.attempts == 1, "one attempt, however it was reported"
        if row.state == "connected":
            assert row.dial_sid is not None

    run()
    fz.assert_state_sound(app, twilio.sids)


SMS_BODIES = ["STOP", "stop.", "Start", "HELP", "callback", "CALL ME BACK", "1", "5", "٣", "５",
              "cancel", "0", "6", "-1", "yes", "good", ""]


def test_texts_of_any_shape_get_valid_messaging_twiml(twilio: Twilio, app, crashes):
    services = app.extensions["ivr"]
    number = new_york_number()
    held = _on_hold(twilio, number)
    services.sms_store.add_message(direction="outbound", kind="wait_estimate",
                                   to_number=number, from_number="+15005550006",
                                   body="About 5 minutes.", status="sent",
                                   at=services.clock(), call_sid=held,
                                   message_sid=new_sid("SM"))

    @FUZZ
    @given(fields=fz.params({"From": [number, number, "+1415", "anonymous", "+4420718387"],
                          "To": ["+15005550006"], "Body": SMS_BODIES,
                          "MessageSid": [new_sid("SM")], "AccountSid": ["AC" + "1" * 32]}),
           status=fz.params({"MessageSid": [new_sid("SM")],
                          "MessageStatus": ["delivered", "failed", "undelivered"],
                          "ErrorCode": ["30003", "0"]}))
    def run(fields: list[tuple[str, str]], status: list[tuple[str, str]]) -> None:
        reply = twilio.post("/sms/incoming", fields)
        assert reply.get_data().count(b"<Message") <= 1, "one reply at most per text"
        twilio.post("/sms/status", status)
        crashes.check()

    run()
    fz.assert_state_sound(app, twilio.sids | {held})
