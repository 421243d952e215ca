"""Bad input on every voice webhook: missing, huge, unicode, wrong-typed and repeated
parameters, all correctly signed so they reach the handlers. Whatever arrives, Twilio gets
valid TwiML (never a 5xx), no handler crashes behind the safe path, and the call's state
stays sound: its session still loads, the call log has one sane row per call and lost
nothing, and a fresh call still walks the demo flow.

The harness (signed posts, value strategies, the state checks) is tests/fuzz_helpers.py,
shared with the other tests/test_fuzz_*.py files.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import fuzz_helpers as fz
from . import twiml_validator
from .conftest import PUBLIC_URL
from .fuzz_helpers import *  # noqa: F403  (the fixtures, used by name)
from .fuzz_helpers import COMPANY, FUZZ, STATUSES, VALUES, Twilio

# -- the validator itself -------------------------------------------------------------------


@pytest.mark.parametrize("body, problem", [
    ("<Response><Say>a\x01b</Say></Response>", "well-formed"),
    ("<Reply><Say>hi</Say></Reply>", "root"),
    ("<Response><Dial><Say>hi</Say></Dial></Response>", "not allowed inside"),
    ("<Response><Gather input='keys'/></Response>", "dtmf"),
    ("<Response><Pause length='-1'/></Response>", "whole number"),
    ("<Response><Say voice='x' colour='red'>hi</Say></Response>", "no attribute"),
    ("<Response><Redirect>javascript:x</Redirect></Response>", "not a URL"),
    ("<Response><Say>hi<Play>x</Play></Say></Response>", "not allowed inside"),
    ("<Response><Hangup>now</Hangup></Response>", "takes no text"),
])
def test_the_twiml_checker_refuses_what_twilio_would(body: str, problem: str):
    with pytest.raises(twiml_validator.InvalidTwiML, match=problem):
        twiml_validator.voice(body)


def test_the_twiml_checker_accepts_the_demo_flows_answers(twilio: Twilio):
    sid = fz.start_call(twilio)
    root = twiml_validator.voice(fz.press(twilio, sid, "0").get_data())
    assert "Enqueue" in twiml_validator.verbs(root)


# -- the voice webhooks ---------------------------------------------------------------------

CALLER = {"From": ["+14155550100", "anonymous", "+442071838750"],
          "To": [COMPANY, "+15005550010", "+15005550099"],
          "AccountSid": ["AC" + "1" * 32], "Direction": ["inbound", "outbound-api"],
          "CallStatus": STATUSES}


def _sid_field(sid: str) -> dict[str, Sequence[str]]:
    return {"CallSid": [sid, sid, sid, "CA", "XX" + "1" * 70, "", "CA-" + sid[2:], sid + "\n",
                        " " + sid, sid.lower()]}


def test_an_incoming_call_with_any_parameters_gets_twiml(twilio: Twilio, app, crashes,
                                                         place_call):
    @FUZZ
    @given(fields=fz.params({"CallSid": [fz.new_call_sid()], **CALLER}), fresh=st.booleans())
    def run(fields: list[tuple[str, str]], fresh: bool) -> None:
        if fresh:  # a new CallSid each time, so the start of a call is what gets fuzzed
            sid = fz.new_call_sid()
            fields = [("CallSid", sid) if k == "CallSid" else (k, v) for k, v in fields]
        twilio.post("/voice/incoming", fields)
        crashes.check()

    run()
    fz.assert_state_sound(app, twilio.sids)
    fz.assert_demo_still_works(place_call)


def test_keys_and_recordings_of_any_shape_get_twiml(twilio: Twilio, app, crashes, place_call):
    sid = fz.start_call(twilio)

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        query = data.draw(fz.turn_query(twilio, sid, extra=("stream", "timeout", "heard")))
        fields = data.draw(fz.params({**_sid_field(sid), "Digits": ["1", "2", "9", "#", "*1#"],
                                   "RecordingUrl": ["https://api.twilio.com/x"],
                                   "SpeechResult": (), **CALLER}))
        twilio.post("/voice/input", fields, query)
        crashes.check()

    run()
    fz.assert_state_sound(app, twilio.sids)
    fz.assert_demo_still_works(place_call)


def test_dial_results_of_any_shape_get_twiml(twilio: Twilio, app, crashes, place_call):
    @FUZZ
    @given(data=st.data(), path=st.sampled_from(["/voice/dial", "/voice/fallback"]))
    def run(data: st.DataObject, path: str) -> None:
        sid = fz.start_call(twilio)
        fz.press(twilio, sid, data.draw(st.sampled_from(["3", "3", "2", "0"])))  # mostly a Dial
        query = data.draw(fz.turn_query(twilio, sid))
        fields = data.draw(fz.params({
            **_sid_field(sid), "DialCallStatus": ["completed", "busy", "no-answer", "failed"],
            "DialCallDuration": ["0", "42"], "ErrorCode": ["11200"], **CALLER}))
        twilio.post(path, fields, query)
        crashes.check()

    run()
    fz.assert_state_sound(app, twilio.sids)
    fz.assert_demo_still_works(place_call)


def test_status_callbacks_of_any_shape_leave_a_sane_call_log(twilio: Twilio, app, crashes,
                                                             place_call):
    sids = [fz.start_call(twilio) for _ in range(3)]
    fz.press(twilio, sids[1], "0")  # one on hold, one being put through
    fz.press(twilio, sids[2], "3")

    @settings(FUZZ, max_examples=120)  # cheap: one request each
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sids))
        fields = data.draw(fz.params({"CallSid": [sid], "CallStatus": ["completed", "canceled"],
                                   "CallDuration": ["0", "42", "7200"]}))
        twilio.post("/voice/status", fields)
        crashes.check()

    run()
    fz.assert_state_sound(app, twilio.sids)
    fz.assert_demo_still_works(place_call)


def test_a_whisper_repeats_any_context_safely(twilio: Twilio, app, crashes):
    @FUZZ
    @given(query=st.lists(st.tuples(st.sampled_from(["c_name", "c_account_number", "c_",
                                                    "c_😀", "other"]), VALUES), max_size=4),
           fields=fz.params({"CallSid": ["CA" + "2" * 32]}))
    def run(query: list[tuple[str, str]], fields: list[tuple[str, str]]) -> None:
        resp = twilio.post("/voice/whisper", fields, query)
        if resp.status_code == 200:
            assert "Say" in twiml_validator.verbs(twiml_validator.voice(resp.get_data()))
        crashes.check()

    run()


def test_undecodable_bytes_in_a_signed_webhook_get_twiml(twilio: Twilio, app, crashes):
    """Invalid UTF-8 and encoded surrogates: signed over the values as the server decodes
    them (werkzeug keeps a sequence that is not UTF-8 as its %-escapes)."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    sid = fz.start_call(twilio)
    node, turn = fz.where(twilio, sid)
    for raw in (b"%ED%A0%80", b"%FF%FE", b"%C0%80", b"%F4%90%80%80", b"%E2%80", b"%00"):
        for path, field in (("/voice/input", b"Digits"), ("/voice/incoming", b"From"),
                            ("/voice/status", b"CallStatus"), ("/sms/incoming", b"Body")):
            body = b"CallSid=" + sid.encode() + b"&" + field + b"=" + raw + b"&From=%2B1415"
            form = Request(EnvironBuilder(method="POST", data=body, content_type=(
                "application/x-www-form-urlencoded")).get_environ()).form
            url = f"{path}?node={node}&turn={turn}"
            resp = twilio.client.post(url, data=body, base_url=PUBLIC_URL, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio.signer.compute_signature(PUBLIC_URL + url, form)})
            fz.check_answer(path, resp)
            crashes.check()
    fz.assert_state_sound(app, [sid])
