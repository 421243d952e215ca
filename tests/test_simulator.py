"""The caller simulator on its own: reading TwiML as Twilio does, and signing as Twilio does.

The server-facing behaviour is tested against the real app in test_flowtest.py; here a
scripted transport hands the simulator fixed TwiML documents to pin down Twilio's rules
(relative URLs, methods, fall-through, whispers, status callbacks) precisely.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Client, Dial, Gather, VoiceResponse

from ivr_server.simulator import (
    DialOutcome,
    SimulatedCall,
    SimulatorError,
    TwiMLError,
    parse_twiml,
    twilio_signature,
)
from ivr_server.simulator import twiml_reader as tw
from tests.scripted_transport import Scripted

TOKEN = "12345678901234567890123456789012"
BASE = "https://ivr.example.test"

# -- reading TwiML -------------------------------------------------------------------------


def test_reads_what_the_twilio_library_writes() -> None:
    response = VoiceResponse()
    gather = Gather(input="dtmf", action="/voice/input?node=menu&turn=1", method="POST",
                    timeout=7, num_digits=1, finish_on_key="", action_on_empty_result=True)
    gather.say("For billing, <press> 1 & wait.", voice="Polly.Joanna", language="en-US")
    gather.pause(length=2)
    response.append(gather)
    dial = Dial(action="/voice/dial?node=x&turn=2", timeout=20, caller_id="+15550001111")
    dial.number("+15005550006", url="/voice/whisper?c_reason=billing")
    client = Client()
    client.identity("priority-desk")
    client.parameter(name="reason", value="support")
    dial.append(client)
    dial.sip("sip:support@pbx.example.com?X-Reason=support&X-Account=42")
    response.append(dial)
    response.redirect("../next", method="GET")
    response.hangup()

    g, d, r, h = parse_twiml(str(response))

    assert isinstance(g, tw.Gather) and g.finish_on_key == "" and g.num_digits == 1
    assert g.action_on_empty_result and g.timeout == 7 and g.input == ("dtmf",)
    assert g.prompts == (tw.Say("For billing, <press> 1 & wait.", "Polly.Joanna", "en-US"),
                         tw.Pause(2))
    assert isinstance(d, tw.Dial) and d.timeout == 20 and d.caller_id == "+15550001111"
    number, client_t, sip = d.targets
    assert (number.kind, number.target, number.url) == (
        "number", "+15005550006", "/voice/whisper?c_reason=billing")
    assert (client_t.target, client_t.params) == ("client:priority-desk", {"reason": "support"})
    assert (sip.target, sip.params) == ("sip:support@pbx.example.com",
                                        {"X-Reason": "support", "X-Account": "42"})
    assert r == tw.Redirect("../next", "GET") and h == tw.Hangup()


def test_twilio_defaults_apply_when_attributes_are_absent() -> None:
    (g,) = parse_twiml("<Response><Gather><Say>Hi</Say></Gather></Response>")
    assert (g.finish_on_key, g.num_digits, g.method, g.timeout, g.action) == (
        "#", None, "POST", 5, None)
    assert not g.action_on_empty_result
    assert parse_twiml("") == [] and parse_twiml("<Response/>") == []
    (say,) = parse_twiml('<Response><Say>Hello <break time="1s"/> there</Say></Response>')
    assert say.text == "Hello there"


@pytest.mark.parametrize(("body", "complaint"), [
    ("Hello, this is not XML", "not well-formed XML"),
    ("<html><body>Oops</body></html>", "not <Response>"),
    ("<Response><say>hi</say></Response>", "unknown verb <say>"),
    ("<Response><Speak>hi</Speak></Response>", "unknown verb <Speak>"),
    ("<Response><Connect/></Response>", "does not act it out"),
    ("<Response>stray words<Hangup/></Response>", "stray text"),
    ("<Response><Gather><Dial>+1555</Dial></Gather></Response>", "may only nest"),
    ("<Response><Gather finishOnKey='##'/></Response>", "finishOnKey"),
    ("<Response><Gather numDigits='0'/></Response>", "at least 1"),
    ("<Response><Gather timeout='soon'/></Response>", "not a whole number"),
    ("<Response><Gather input='dtmf fax'/></Response>", "dtmf, speech or both"),
    ("<Response><Gather actionOnEmptyResult='yes'/></Response>", "true or false"),
    ("<Response><Gather method='PUT'/></Response>", "GET or POST"),
    ("<Response><Pause length='0.5'/></Response>", "not a whole number"),
    ("<Response><Say/></Response>", "no text"),
    ("<Response><Say>Hi<Play>x</Play></Say></Response>", "SSML"),
    ("<Response><Redirect/></Response>", "needs a URL"),
    ("<Response><Dial/></Response>", "nobody to dial"),
    ("<Response><Dial><Sip>support@pbx</Sip></Dial></Response>", "sip: URI"),
    ("<Response><Dial><Client><Parameter name='a'/></Client></Dial></Response>", "name and value"),
    ("<Response><Dial><Say>hi</Say></Dial></Response>", "cannot dial"),
    ("<Response><Reject reason='spam'/></Response>", "rejected or busy"),
    ("<Response><Hangup>now</Hangup></Response>", "stray text"),
])
def test_invalid_twiml_is_refused_loudly(body: str, complaint: str) -> None:
    with pytest.raises(TwiMLError, match=complaint):
        parse_twiml(body)


# -- signing ---------------------------------------------------------------------------------


def test_signature_checks_out_with_twilios_validator() -> None:
    url = f"{BASE}/voice/input?node=menu&turn=1"
    params = {"CallSid": "CA" + "0" * 32, "Digits": "1", "FinishedOnKey": "", "From": "+1415"}
    signature = twilio_signature(TOKEN, url, params)
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, params, signature)
    assert not validator.validate(url, {**params, "Digits": "2"}, signature)
    assert not validator.validate(url.replace("turn=1", "turn=2"), params, signature)
    assert not RequestValidator("x" * 32).validate(url, params, signature)


# -- following TwiML, as Twilio does -------------------------------------------------------


def call_on(pages: Mapping[str, str | tuple[int, str, str]], **kw: object) -> tuple[
        SimulatedCall, Scripted]:
    transport = Scripted(pages)
    return SimulatedCall(transport, TOKEN, **kw), transport  # type: ignore[arg-type]


MENU = ('<Response><Gather action="input?turn=1" numDigits="1" finishOnKey="" '
        'actionOnEmptyResult="true"><Say>Press 1.</Say></Gather></Response>')


def test_every_request_is_signed_and_carries_twilios_parameters() -> None:
    call, t = call_on({"/voice/incoming": MENU,
                       "/voice/input": "<Response><Say>Bye.</Say><Hangup/></Response>"},
                      from_="+14155550100", to="+15005550006")
    assert call.dial() == ["Press 1."]
    call.press("1")
    assert call.heard == ["Press 1.", "Bye."] and call.ended and call.status == "completed"
    assert [r["path"] for r in t.sent] == ["/voice/incoming", "/voice/input", "/voice/status"]
    validator = RequestValidator(TOKEN)
    for r in t.sent:
        assert validator.validate(r["url"], r["params"], r["signature"])
        p = r["params"]
        assert p["CallSid"] == call.call_sid and len(p["CallSid"]) == 34
        assert p["AccountSid"].startswith("AC") and len(p["AccountSid"]) == 34
        assert (p["From"], p["To"], p["Caller"], p["Called"]) == (
            "+14155550100", "+15005550006", "+14155550100", "+15005550006")
        assert (p["Direction"], p["ApiVersion"]) == ("inbound", "2010-04-01")
    statuses = [r["params"]["CallStatus"] for r in t.sent]
    assert statuses == ["ringing", "in-progress", "completed"]
    # the action is resolved against the URL of the document that held the Gather
    assert t.sent[1]["url"] == f"{BASE}/voice/input?turn=1"
    assert (t.sent[1]["params"]["Digits"], t.sent[1]["params"]["FinishedOnKey"]) == ("1", "")
    assert t.sent[2]["params"]["CallDuration"].isdigit()
    assert call.request_count == 3


def test_num_digits_and_finish_on_key_end_a_gather_as_on_twilio() -> None:
    collect = ('<Response><Gather action="/voice/input" numDigits="4" '
               'actionOnEmptyResult="true"><Say>Code?</Say></Gather></Response>')
    call, t = call_on({"/voice/incoming": collect, "/voice/input": collect})
    call.dial()
    call.press("123456")  # stops at numDigits
    call.press("12#9")  # the finish key ends it, and is not part of Digits
    call.press("#")  # nothing entered: an empty result
    sent = [(r["params"]["Digits"], r["params"]["FinishedOnKey"]) for r in t.to("/voice/input")]
    assert sent == [("1234", ""), ("12", "#"), ("", "#")]


def test_without_action_on_empty_result_a_silent_gather_falls_through() -> None:
    page = ('<Response><Gather action="/voice/input"><Say>Choose.</Say></Gather>'
            '<Say>We did not get that.</Say><Redirect method="GET">/voice/again</Redirect>'
            '</Response>')
    call, t = call_on({"/voice/incoming": page, "/voice/again": "<Response><Hangup/></Response>"})
    call.dial()
    assert call.silence() == ["We did not get that."]
    assert not t.to("/voice/input") and call.ended
    (again,) = t.to("/voice/again")
    # GET: the parameters travel in the query string, which the signature covers
    assert again["method"] == "GET" and again["params"] == {}
    assert again["query"]["CallSid"] == call.call_sid
    assert RequestValidator(TOKEN).validate(again["url"], {}, again["signature"])


def test_a_transfer_rings_until_told_how_it_ends_and_the_agent_hears_the_whisper() -> None:
    page = ('<Response><Say>Connecting.</Say><Dial action="/voice/dial" timeout="20">'
            '<Number url="/voice/whisper?c_reason=billing">+15005550006</Number></Dial>'
            '</Response>')
    pages = {"/voice/incoming": page, "/voice/whisper": "<Response><Say>Billing call.</Say>"
             "</Response>", "/voice/dial": "<Response><Hangup/></Response>"}
    call, t = call_on(pages)
    call.dial()
    assert call.waiting_for == "dial" and str(call.transferred_to) == "+15005550006"
    assert not t.to("/voice/whisper")  # nobody answered yet
    with pytest.raises(SimulatorError, match="still ringing"):
        call.press("1")
    call.answer_dial(DialOutcome.answered(90))
    (whisper,) = t.to("/voice/whisper")
    assert whisper["params"]["Direction"] == "outbound-dial"
    assert whisper["params"]["ParentCallSid"] == call.call_sid
    assert whisper["params"]["To"] == "+15005550006"
    assert call.transferred_to.whisper == ["Billing call."]
    (dial,) = t.to("/voice/dial")
    assert (dial["params"]["DialCallStatus"], dial["params"]["DialCallDuration"]) == (
        "completed", "90")
    assert dial["params"]["DialCallSid"].startswith("CA")
    assert call.ended and call.transferred_to.status == "completed"


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
def test_an_unanswered_transfer_reports_its_status_and_skips_the_whisper(outcome: str) -> None:
    page = ('<Response><Dial action="/voice/dial"><Number url="/voice/whisper">+15005550006'
            '</Number></Dial></Response>')
    call, t = call_on({"/voice/incoming": page,
                       "/voice/dial": "<Response><Say>Sorry.</Say></Response>"},
                      dial_outcome=DialOutcome.parse(outcome))
    assert call.dial() == ["Sorry."]
    assert not t.to("/voice/whisper")
    (dial,) = t.to("/voice/dial")
    assert dial["params"]["DialCallStatus"] == outcome and "DialCallDuration" not in dial["params"]


def test_client_parameters_and_sip_headers_reach_the_agent() -> None:
    page = ('<Response><Dial><Client><Identity>desk</Identity><Parameter name="reason" '
            'value="support"/></Client></Dial><Say>After.</Say></Response>')
    call, _ = call_on({"/voice/incoming": page})
    call.dial()
    assert call.transferred_to.kind == "client" and call.transferred_to.target == "client:desk"
    assert call.transferred_to.agent_context() == ["reason: support"]
    call.answer_dial()  # no action: Twilio carries on with the next verb
    assert call.last_heard == "After." and call.ended


def test_hanging_up_while_an_agent_rings_reports_a_canceled_dial() -> None:
    page = '<Response><Dial action="/voice/dial">+15005550006</Dial></Response>'
    call, t = call_on({"/voice/incoming": page})
    call.dial()
    call.hangup()
    (dial,) = t.to("/voice/dial")
    assert dial["params"]["DialCallStatus"] == "canceled"
    assert dial["params"]["CallStatus"] == "completed"
    assert t.sent[-1]["path"] == "/voice/status" and call.status == "completed"


@pytest.mark.parametrize(("reason", "status"), [("busy", "busy"), ("rejected", "no-answer")])
def test_reject_as_the_first_verb_leaves_the_call_unanswered(reason: str, status: str) -> None:
    call, t = call_on({"/voice/incoming": f'<Response><Reject reason="{reason}"/></Response>'})
    call.dial()
    assert call.ended and call.status == status
    assert t.sent[-1]["params"]["CallStatus"] == status


@pytest.mark.parametrize(("page", "complaint"), [
    ((500, "boom", "text/plain"), "HTTP 500"),
    ((403, "Forbidden", "text/plain"), "HTTP 403"),
    ((200, "<Response><Hangup/></Response>", "text/html"), "not text/xml"),
    ((200, "Thanks!", "text/xml"), "invalid TwiML"),
    ("<Response><Sya>Hi</Sya></Response>", "unknown verb <Sya>"),
])
def test_a_server_misbehaving_fails_the_call_loudly(page: object, complaint: str) -> None:
    call, _ = call_on({"/voice/incoming": page})  # type: ignore[dict-item]
    with pytest.raises(SimulatorError, match=complaint):
        call.dial()


def test_an_empty_answer_ends_the_call_and_expectations_show_the_transcript() -> None:
    call, _ = call_on({"/voice/incoming": "<Response><Say>Hello.</Say></Response>"})
    call.dial()
    assert call.ended and call.status == "completed"
    call.expect_heard("hello")
    with pytest.raises(AssertionError, match=r"(?s)expected to hear 'Goodbye'.*Hello\."):
        call.expect_heard("Goodbye")
    with pytest.raises(SimulatorError, match="has ended"):
        call.press("1")


def test_a_redirect_loop_is_caught() -> None:
    call, _ = call_on({"/voice/incoming": "<Response><Redirect>/voice/incoming</Redirect>"
                                          "</Response>"})
    with pytest.raises(SimulatorError, match="a loop"):
        call.dial()
