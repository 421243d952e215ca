"""A strict TwiML checker for tests: well-formed XML, a <Response> root, and only the verbs,
nesting and attributes Twilio documents (narrowed to what this server may emit), so a
webhook answer that Twilio would reject ("12100 Document parse failure", "12200 Schema
validation warning") fails a test instead of a live call.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

URL_ATTRS = frozenset({"action", "url", "waitUrl", "statusCallback", "recordingStatusCallback"})
METHODS = frozenset({"GET", "POST"})


@dataclass(frozen=True)
class Verb:
    """What one element may hold: child elements, attributes, and whether it takes text."""

    children: frozenset[str] = frozenset()
    attrs: frozenset[str] = frozenset()
    text: str = "none"  # none | optional | required
    ints: frozenset[str] = field(default=frozenset())  # attributes that must be whole numbers


def _verb(children: str = "", attrs: str = "", text: str = "none", ints: str = "") -> Verb:
    return Verb(frozenset(children.split()), frozenset(attrs.split()), text,
                frozenset(ints.split()))


PROMPTS = "Say Play Pause"
VOICE_VERBS = ("Say Play Pause Gather Dial Enqueue Leave Hangup Redirect Reject Record Start "
               "Stop")
VOICE: dict[str, Verb] = {
    "Response": _verb(VOICE_VERBS),
    "Say": _verb(attrs="voice language loop", text="required", ints="loop"),
    "Play": _verb(attrs="loop digits", text="optional", ints="loop"),
    "Pause": _verb(attrs="length", ints="length"),
    "Gather": _verb(PROMPTS, "input action method timeout actionOnEmptyResult finishOnKey "
                    "numDigits speechTimeout language hints profanityFilter speechModel "
                    "enhanced partialResultCallback partialResultCallbackMethod",
                    ints="timeout numDigits"),
    "Record": _verb(attrs="action method timeout maxLength playBeep trim finishOnKey "
                    "recordingStatusCallback recordingStatusCallbackMethod "
                    "recordingStatusCallbackEvent transcribe transcribeCallback",
                    ints="timeout maxLength"),
    "Redirect": _verb(attrs="method", text="required"),
    "Dial": _verb("Number Sip Client Queue Conference", "action method timeout callerId "
                  "hangupOnStar timeLimit record answerOnBridge ringTone", text="optional",
                  ints="timeout timeLimit"),
    "Number": _verb(attrs="url method sendDigits statusCallback statusCallbackEvent "
                    "statusCallbackMethod", text="required"),
    "Sip": _verb(attrs="url method username password statusCallback statusCallbackEvent "
                 "statusCallbackMethod", text="required"),
    "Client": _verb("Identity Parameter", "url method statusCallback statusCallbackEvent "
                    "statusCallbackMethod", text="optional"),
    "Identity": _verb(text="required"),
    "Queue": _verb(attrs="url method reservationSid postWorkActivitySid", text="required"),
    "Conference": _verb(attrs="muted beep startConferenceOnEnter endConferenceOnExit "
                        "waitUrl waitMethod maxParticipants", text="required"),
    "Enqueue": _verb(attrs="action method waitUrl waitUrlMethod maxQueueSize workflowSid",
                     text="required"),
    "Leave": _verb(),
    "Hangup": _verb(),
    "Reject": _verb(attrs="reason"),
    "Start": _verb("Stream", "action method"),
    "Stop": _verb("Stream"),
    "Stream": _verb("Parameter", "name url track statusCallback statusCallbackMethod"),
    "Parameter": _verb(attrs="name value"),
}
MESSAGING: dict[str, Verb] = {
    "Response": _verb("Message Redirect"),
    "Message": _verb("Body Media", "to from action method statusCallback", text="optional"),
    "Body": _verb(text="required"),
    "Media": _verb(text="required"),
    "Redirect": _verb(attrs="method", text="required"),
}


class InvalidTwiML(AssertionError):
    """A webhook answer Twilio would refuse or misread."""


def voice(body: bytes | str) -> ET.Element:
    """Check a voice webhook's answer; returns the parsed <Response>."""
    return _check(body, VOICE)


def messaging(body: bytes | str) -> ET.Element:
    """Check an SMS webhook's answer (an empty <Response/> is fine: no reply)."""
    return _check(body, MESSAGING)


def verbs(root: ET.Element) -> list[str]:
    """The tags in document order, for assertions like 'the caller is dialled'."""
    return [el.tag for el in root.iter()]


def _check(body: bytes | str, grammar: dict[str, Verb]) -> ET.Element:
    data = body.encode() if isinstance(body, str) else body
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InvalidTwiML(f"not well-formed XML ({exc}): {data[:300]!r}") from exc
    if root.tag != "Response":
        raise InvalidTwiML(f"the root is <{root.tag}>, not <Response>")
    _element(root, grammar, "Response")
    return root


def _element(el: ET.Element, grammar: dict[str, Verb], path: str) -> None:
    verb = grammar[el.tag]
    for name, value in el.attrib.items():
        if name not in verb.attrs:
            raise InvalidTwiML(f"{path}: <{el.tag}> has no attribute {name!r}")
        _attribute(el.tag, name, value, verb, path)
    text = (el.text or "").strip()
    if verb.text == "none" and text:
        raise InvalidTwiML(f"{path}: <{el.tag}> takes no text, got {text[:60]!r}")
    if verb.text == "required" and not text:
        raise InvalidTwiML(f"{path}: <{el.tag}> needs text")
    if el.tag in ("Redirect", "Play") and text and not text.startswith(
            ("/", "http://", "https://")):
        raise InvalidTwiML(f"{path}: <{el.tag}> {text[:60]!r} is not a URL")
    for child in el:
        if child.tag not in verb.children:
            raise InvalidTwiML(f"{path}: <{child.tag}> is not allowed inside <{el.tag}>")
        if (child.tail or "").strip():
            raise InvalidTwiML(f"{path}: stray text after <{child.tag}>")
        _element(child, grammar, f"{path}/{child.tag}")


def _attribute(tag: str, name: str, value: str, verb: Verb, path: str) -> None:
    where = f"{path}: <{tag} {name}={value[:60]!r}>"
    if name in verb.ints and not (value.isascii() and value.isdigit()
                                  and int(value) >= (0 if name == "loop" else 1)):
        raise InvalidTwiML(f"{where} is not a whole number in range")
    if name in URL_ATTRS and not value.startswith(("/", "http://", "https://", "wss://")):
        raise InvalidTwiML(f"{where} is not a URL")
    if name.lower().endswith("method") and value not in METHODS:
        raise InvalidTwiML(f"{where} is not GET or POST")
    if tag == "Gather" and name == "input" and value not in ("dtmf", "speech", "dtmf speech"):
        raise InvalidTwiML(f"{where} is not dtmf and/or speech")
    if name == "finishOnKey" and any(c not in "0123456789*#" for c in value):
        raise InvalidTwiML(f"{where} holds something other than keys")
