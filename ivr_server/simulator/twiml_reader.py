"""Read a TwiML voice document into verb objects, refusing what Twilio would refuse.

The simulator is a test of the server's output as much as a driver of calls, so
anything Twilio would reject (a wrong root, an unknown or misspelt verb, a bad
attribute value, a verb nested where it may not be) raises TwiMLError naming it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

DTMF_KEYS = "0123456789#*"
# Valid Twilio voice verbs the simulator does not act out: named, so the error says so.
UNSIMULATED = {"Connect", "Pay", "Refer", "Prompt", "Echo", "Sms", "Message"}
STREAM_TRACKS = ("inbound_track", "outbound_track", "both_tracks")
SSML_TAGS = {"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"}


class TwiMLError(ValueError):
    """The server answered something Twilio would not accept as TwiML."""


@dataclass(frozen=True)
class Say:
    text: str
    voice: str | None = None
    language: str | None = None
    loop: int = 1


@dataclass(frozen=True)
class Play:
    url: str
    loop: int = 1
    digits: str | None = None


@dataclass(frozen=True)
class Pause:
    length: int = 1


Prompt = Say | Play | Pause


@dataclass(frozen=True)
class Gather:
    action: str | None
    method: str = "POST"
    timeout: int = 5
    num_digits: int | None = None
    finish_on_key: str = "#"
    input: tuple[str, ...] = ("dtmf",)
    action_on_empty_result: bool = False
    language: str | None = None
    hints: str | None = None
    prompts: tuple[Prompt, ...] = ()


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class DialTarget:
    """One noun inside <Dial>: who is rung, and what that leg is given."""

    kind: str  # number, sip, client, queue, conference
    target: str  # "+1500...", "sip:user@host", "client:identity", queue or room name
    url: str | None = None  # TwiML run on the answering party's leg (the whisper)
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)  # Client Parameters / SIP URI headers


@dataclass(frozen=True)
class Dial:
    targets: tuple[DialTarget, ...]
    action: str | None = None
    method: str = "POST"
    timeout: int = 30
    caller_id: str | None = None


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str = "rejected"


@dataclass(frozen=True)
class Record:
    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    max_length: int = 3600
    finish_on_key: str = "1234567890*#"
    play_beep: bool = True


@dataclass(frozen=True)
class StartStream:
    """<Start><Stream>: fork the call's audio to a websocket while the call goes on."""

    url: str
    name: str | None = None
    track: str = "inbound_track"
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StopStream:
    name: str | None = None


@dataclass(frozen=True)
class Enqueue:
    name: str
    action: str | None = None
    method: str = "POST"
    wait_url: str | None = None
    wait_url_method: str = "POST"


@dataclass(frozen=True)
class Leave:
    pass


Verb = (Say | Play | Pause | Gather | Redirect | Dial | Hangup | Reject | Record | Enqueue | Leave
        | StartStream | StopStream)


def parse_twiml(text: str | bytes) -> list[Verb]:
    """The verbs of a <Response>, in order. An empty body means "no verbs" (Twilio hangs up)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        return []
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TwiMLError(f"not well-formed XML ({exc}): {_snippet(text)}") from None
    if root.tag != "Response":
        raise TwiMLError(f"the root element is <{root.tag}>, not <Response>")
    _no_text(root, "Response")
    return [_verb(el) for el in root]


def _verb(el: ET.Element) -> Verb:
    reader = _READERS.get(el.tag)
    if reader is None:
        if el.tag in UNSIMULATED:
            raise TwiMLError(f"<{el.tag}> is valid TwiML but the simulator does not act it out")
        raise TwiMLError(f"unknown verb <{el.tag}> (TwiML is case-sensitive)")
    return reader(el)


def _say(el: ET.Element) -> Say:
    for child in el.iter():
        if child is not el and child.tag not in SSML_TAGS:
            raise TwiMLError(f"<Say> may hold text and SSML, not <{child.tag}>")
    text = " ".join("".join(el.itertext()).split())
    if not text:
        raise TwiMLError("<Say> has no text to speak")
    return Say(text, el.get("voice"), el.get("language"), _int(el, "loop", 1, low=0))


def _play(el: ET.Element) -> Play:
    _leaf(el)
    url = (el.text or "").strip()
    digits = el.get("digits")
    if not url and not digits:
        raise TwiMLError("<Play> needs a URL (or a digits attribute)")
    if digits and any(c not in DTMF_KEYS + "w" for c in digits):
        raise TwiMLError(f"<Play digits={digits!r}> holds something other than keys and w")
    return Play(url, _int(el, "loop", 1, low=0), digits)


def _pause(el: ET.Element) -> Pause:
    _leaf(el)
    _no_text(el, "Pause")
    return Pause(_int(el, "length", 1, low=1))


def _gather(el: ET.Element) -> Gather:
    _no_text(el, "Gather")
    prompts: list[Prompt] = []
    for child in el:
        if child.tag not in ("Say", "Play", "Pause"):
            raise TwiMLError(f"<Gather> may only nest <Say>, <Play> and <Pause>, not <{child.tag}>")
        prompts.append(_READERS[child.tag](child))  # type: ignore[arg-type]
    finish = el.get("finishOnKey", "#")
    if len(finish) > 1 or (finish and finish not in DTMF_KEYS):
        raise TwiMLError(f"<Gather finishOnKey={finish!r}> must be one of {DTMF_KEYS} or empty")
    inputs = tuple(sorted(el.get("input", "dtmf").split()))
    if not inputs or any(i not in ("dtmf", "speech") for i in inputs):
        raise TwiMLError(f"<Gather input={el.get('input')!r}> must be dtmf, speech or both")
    num = el.get("numDigits")
    return Gather(action=_url_attr(el, "action"), method=_method(el),
                  timeout=_int(el, "timeout", 5, low=1),
                  num_digits=_int(el, "numDigits", 1, low=1) if num is not None else None,
                  finish_on_key=finish, input=inputs,
                  action_on_empty_result=_bool(el, "actionOnEmptyResult", False),
                  language=el.get("language"), hints=el.get("hints"), prompts=tuple(prompts))


def _redirect(el: ET.Element) -> Redirect:
    _leaf(el)
    url = (el.text or "").strip()
    if not url:
        raise TwiMLError("<Redirect> needs a URL")
    return Redirect(url, _method(el))


def _dial(el: ET.Element) -> Dial:
    targets: list[DialTarget] = []
    text = (el.text or "").strip()
    if text:
        targets.append(DialTarget("number", text))
    for child in el:
        if (child.tail or "").strip():
            raise TwiMLError("<Dial> mixes a bare number with nouns")
        targets.append(_noun(child))
    if not targets:
        raise TwiMLError("<Dial> has nobody to dial")
    if text and len(targets) > 1:
        raise TwiMLError("<Dial> mixes a bare number with nouns")
    return Dial(tuple(targets), _url_attr(el, "action"), _method(el),
                _int(el, "timeout", 30, low=1), el.get("callerId"))


def _noun(el: ET.Element) -> DialTarget:
    url, method = _url_attr(el, "url"), _method(el)
    if el.tag in ("Number", "Queue", "Conference"):
        _leaf(el)
        value = (el.text or "").strip()
        if not value:
            raise TwiMLError(f"<{el.tag}> is empty")
        return DialTarget(el.tag.lower(), value, url, method)
    if el.tag == "Sip":
        _leaf(el)
        uri = (el.text or "").strip()
        if not uri.lower().startswith(("sip:", "sips:")):
            raise TwiMLError(f"<Sip> needs a sip: URI, got {uri!r}")
        params = dict(parse_qsl(urlsplit(uri).query, keep_blank_values=True))
        return DialTarget("sip", uri.split("?", 1)[0], url, method, params)
    if el.tag == "Client":
        return _client(el, url, method)
    raise TwiMLError(f"<Dial> cannot dial <{el.tag}> (expected Number, Sip, Client, Queue "
                     "or Conference)")


def _client(el: ET.Element, url: str | None, method: str) -> DialTarget:
    identity = (el.text or "").strip()
    params: dict[str, str] = {}
    for child in el:
        if child.tag == "Identity":
            identity = (child.text or "").strip()
        elif child.tag == "Parameter":
            name = child.get("name")
            if not name or child.get("value") is None:
                raise TwiMLError("<Parameter> needs both name and value")
            params[name] = child.get("value", "")
        else:
            raise TwiMLError(f"<Client> may only nest <Identity> and <Parameter>, not "
                             f"<{child.tag}>")
    if not identity:
        raise TwiMLError("<Client> has no identity")
    return DialTarget("client", f"client:{identity}", url, method, params)


def _hangup(el: ET.Element) -> Hangup:
    _leaf(el)
    _no_text(el, "Hangup")
    return Hangup()


def _reject(el: ET.Element) -> Reject:
    _leaf(el)
    reason = el.get("reason", "rejected")
    if reason not in ("rejected", "busy"):
        raise TwiMLError(f"<Reject reason={reason!r}> must be rejected or busy")
    return Reject(reason)


def _record(el: ET.Element) -> Record:
    _leaf(el)
    finish = el.get("finishOnKey", "1234567890*#")
    if any(c not in DTMF_KEYS for c in finish):
        raise TwiMLError(f"<Record finishOnKey={finish!r}> may only hold {DTMF_KEYS}")
    return Record(_url_attr(el, "action"), _method(el), _int(el, "timeout", 5, low=0),
                  _int(el, "maxLength", 3600, low=1), finish, _bool(el, "playBeep", True))


def _enqueue(el: ET.Element) -> Enqueue:
    _leaf(el)
    name = (el.text or "").strip()
    if not name and not el.get("workflowSid"):
        raise TwiMLError("<Enqueue> needs a queue name")
    return Enqueue(name, _url_attr(el, "action"), _method(el), _url_attr(el, "waitUrl"),
                   _method(el, "waitUrlMethod"))


def _leave(el: ET.Element) -> Leave:
    _leaf(el)
    return Leave()


def _start(el: ET.Element) -> StartStream:
    _no_text(el, "Start")
    if len(el) != 1 or el[0].tag != "Stream":
        raise TwiMLError("<Start> must hold one <Stream> (the simulator acts out streams only)")
    stream = el[0]
    url = _url_attr(stream, "url") or ""
    if not url.startswith("wss://") and not url.startswith("ws://"):
        raise TwiMLError(f"<Stream url={url!r}> must be an absolute wss:// URL")
    track = stream.get("track", "inbound_track")
    if track not in STREAM_TRACKS:
        raise TwiMLError(f"<Stream track={track!r}> must be one of {', '.join(STREAM_TRACKS)}")
    params = []
    for child in stream:
        if child.tag != "Parameter" or not child.get("name"):
            raise TwiMLError(f"<Stream> may only nest <Parameter name=...>, not <{child.tag}>")
        params.append((child.get("name", ""), child.get("value", "")))
    return StartStream(url, stream.get("name"), track, tuple(params))


def _stop(el: ET.Element) -> StopStream:
    _no_text(el, "Stop")
    if len(el) != 1 or el[0].tag != "Stream":
        raise TwiMLError("<Stop> must hold one <Stream>")
    _leaf(el[0])
    return StopStream(el[0].get("name"))


_READERS = {"Say": _say, "Play": _play, "Pause": _pause, "Gather": _gather,
            "Redirect": _redirect, "Dial": _dial, "Hangup": _hangup, "Reject": _reject,
            "Record": _record, "Enqueue": _enqueue, "Leave": _leave, "Start": _start,
            "Stop": _stop}


def _leaf(el: ET.Element) -> None:
    if len(el):
        raise TwiMLError(f"<{el.tag}> cannot nest <{el[0].tag}>")


def _no_text(el: ET.Element, tag: str) -> None:
    texts = [el.text or ""] + [c.tail or "" for c in el]
    if any(t.strip() for t in texts):
        raise TwiMLError(f"<{tag}> holds stray text {''.join(texts).strip()!r}")


def _method(el: ET.Element, name: str = "method") -> str:
    value = el.get(name, "POST").upper()
    if value not in ("GET", "POST"):
        raise TwiMLError(f"<{el.tag} {name}={el.get(name)!r}> must be GET or POST")
    return value


def _url_attr(el: ET.Element, name: str) -> str | None:
    value = el.get(name)
    if value is not None and not value.strip():
        raise TwiMLError(f"<{el.tag} {name}=\"\"> is an empty URL")
    return value.strip() if value is not None else None


def _int(el: ET.Element, name: str, default: int, *, low: int) -> int:
    raw = el.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TwiMLError(f"<{el.tag} {name}={raw!r}> is not a whole number") from None
    if value < low:
        raise TwiMLError(f"<{el.tag} {name}={raw!r}> must be at least {low}")
    return value


def _bool(el: ET.Element, name: str, default: bool) -> bool:
    raw = el.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise TwiMLError(f"<{el.tag} {name}={raw!r}> must be true or false")
    return raw == "true"


def _snippet(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")
