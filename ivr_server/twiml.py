"""Render engine actions as TwiML. The only module that knows TwiML's shape.

Why strings and not twilio's VoiceResponse: building an ElementTree and serialising it was
a tenth of a webhook's CPU. The output is byte for byte what VoiceResponse writes
(attributes sorted by name, booleans as true/false, ElementTree's escaping, `<X />` when
empty); tests/test_twiml_render.py holds the two side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from flows import actions as act

SIP_HEADERS_MAX = 1000  # Twilio caps custom SIP headers; keep well under it
# Characters XML 1.0 forbids even escaped; ElementTree writes them as they are, and one in a
# caller-supplied value (a whisper's context, a CRM name) would make the whole answer
# unparseable for Twilio.
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


SPEECH_SILENCE_SECONDS = 2  # a pause this long ends a recorded answer
KEYS_BEFORE_RECORDING = 3  # seconds a collect waits for a first key before recording

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# ElementTree's escaping: text escapes & < >; attribute values also " and CR, LF, TAB.
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                               "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"})
_TEXT_SPECIAL = re.compile(r"[&<>]")
_ATTR_SPECIAL = re.compile(r'[&<>"\r\n\t]')
_URL_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus leaves as it is

Attrs = dict[str, object]


@dataclass(frozen=True)
class Listening:
    """How the server can hear callers: digit words known, where streams go, how long a
    recorded answer may be."""

    digits: bool
    stream_url: str
    max_recording_seconds: int = 10


# -- the XML writer ------------------------------------------------------------------------


def _el(name: str, attrs: Attrs | None = None, text: str | None = None, inner: str = "") -> str:
    """One element: attributes without a value are left out, as VoiceResponse does; `text`
    (escaped here) and `inner` (already XML) make its content."""
    head = name
    if attrs:
        for key in sorted(attrs):
            value = attrs[key]
            if value is None:
                continue
            s = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if _ATTR_SPECIAL.search(s):
                s = s.translate(_ATTR_ESCAPES)
            head += f' {key}="{s}"'
    if text:
        if _TEXT_SPECIAL.search(text):
            text = text.translate(_TEXT_ESCAPES)
        inner = text + inner
    return f"<{head}>{inner}</{name}>" if inner else f"<{head} />"


def _document(inner: str) -> str:
    """The whole answer, without characters no XML parser accepts; text that cannot be
    UTF-8 (a lone surrogate) becomes a character reference, as ElementTree writes it."""
    doc = NOT_XML.sub("", f"{DECLARATION}{_el('Response', inner=inner)}")
    if not doc.isascii():
        try:
            doc.encode("utf-8")
        except UnicodeEncodeError:
            doc = doc.encode("utf-8", "xmlcharrefreplace").decode("utf-8")
    return doc


def urlencode(query: dict[str, object]) -> str:
    """urllib.parse.urlencode's answer, without its cost for the plain names and numbers
    our URLs carry (it was most of the time spent rendering)."""
    return "&".join(f"{_plus(k)}={_plus(v)}" for k, v in query.items())


def _plus(value: object) -> str:
    text = str(value)
    return text if _URL_PLAIN.fullmatch(text) else quote_plus(text)


# -- actions -------------------------------------------------------------------------------


def render(actions: Iterable[act.Action], *, listen: Listening | None = None,
           stop_stream: str | None = None) -> str:
    """TwiML for the actions. With `listen`, prompts that take speech also record it (path 1)
    or stream it (path 2); `stop_stream` ends the stream of the prompt just answered."""
    out: list[str] = []
    if stop_stream:
        out.append(_el("Stop", inner=_el("Stream", {"name": stop_stream})))
    for action in actions:
        if isinstance(action, act.Log):
            continue
        if isinstance(action, act.Say | act.Play | act.Pause):
            out.append(_prompt(action))
        elif isinstance(action, act.Gather):
            _listen(out, action, _speech_mode(action, listen), listen)
        elif isinstance(action, act.Dial):
            out.append(_dial(action))
        elif isinstance(action, act.Enqueue):
            if action.words and action.speech == "stream" and listen is not None:
                out.append(_stream_hold(action, listen))
            query = urlencode({"node": action.node, "turn": action.turn})
            out.append(_el("Enqueue", {"action": f"/voice/queue/result?{query}",
                                       "method": "POST", "waitUrl": f"/voice/queue/wait?{query}",
                                       "waitUrlMethod": "POST"}, action.queue))
        elif isinstance(action, act.HoldOffer):
            out.append(_hold_offer(action))
        elif isinstance(action, act.Leave):
            out.append("<Leave />")
        elif isinstance(action, act.Hangup):
            out.append("<Hangup />")
    return _document("".join(out))


HOLD_STREAM = ".hold"  # a stream name's ending when it listens through a queue's wait


def _start_stream(name: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Start streaming the caller's audio to our websocket, with the parameters it needs."""
    inner = "".join(_el("Parameter", {"name": k, "value": v}) for k, v in params)
    return _el("Start", inner=_el("Stream", {"name": name, "url": url,
                                             "track": "inbound_track"}, inner=inner))


def _stream_hold(action: act.Enqueue, listen: Listening) -> str:
    """Stream the caller's audio through the wait, so "call me back" is heard on hold."""
    name = f"{action.node}.{action.turn}{HOLD_STREAM}"
    return _start_stream(name, listen.stream_url, (("node", action.node),
                                                   ("turn", str(action.turn)), ("stream", name)))


def _hold_offer(action: act.HoldOffer) -> str:
    """Hold music that listens for the call-back key; nothing pressed falls through, the
    wait document ends, and Twilio asks the wait URL again."""
    query = urlencode({"node": action.node, "turn": action.turn})
    return _el("Gather", {"input": "dtmf", "numDigits": 1, "timeout": 2, "method": "POST",
                          "action": f"/voice/queue/offer?{query}"},
               inner="".join(_prompt(p) for p in action.prompts))


def _speech_mode(action: act.Gather, listen: Listening | None) -> str:
    if listen is None or not (action.synonyms or (action.spoken_digits and listen.digits)):
        return "off"
    return action.speech


def _listen(out: list[str], action: act.Gather, mode: str, listen: Listening | None) -> None:
    if mode == "record" and listen is not None:
        # Keys during the prompt (barge-in), then, with no key, record a short answer
        # that a key also ends; silence falls through to the timeout Redirect.
        menu = bool(action.choices)
        out.append(_gather(action, timeout=1 if menu else min(action.timeout,
                                                              KEYS_BEFORE_RECORDING),
                           on_empty=False))
        out.append(_el("Record", {
            "action": _input_url(action), "method": "POST", "timeout": SPEECH_SILENCE_SECONDS,
            "maxLength": listen.max_recording_seconds, "playBeep": False,
            "trim": "trim-silence",
            "finishOnKey": "".join(action.choices) or action.finish_on_key or "#"}))
        out.append(_el("Redirect", {"method": "POST"}, _input_url(action, timed_out=True)))
        return
    stream = None
    if mode == "stream" and listen is not None:
        # The caller's audio goes to our websocket while the prompt plays; keys still work.
        stream = stream_name(action)
        out.append(_start_stream(stream, listen.stream_url, (
            ("node", action.node), ("turn", str(action.turn)), ("stream", stream))))
    out.append(_gather(action, stream=stream))
    # Twilio calls the action on an empty result; should it ever fall through, ask again.
    out.append(_el("Redirect", {"method": "POST"},
                   _input_url(action, timed_out=True, stream=stream)))


def stream_name(action: act.Gather) -> str:
    """Unique within the call, so the next answer can stop exactly this stream."""
    return f"{action.node}.{action.turn}"


def say_then_dial(message: str, target: str | None, goodbye: str, voice: str | None,
                  language: str | None) -> str:
    """The safe path: an apology and a person, or a polite goodbye when there is nobody."""
    say = {"voice": voice or None, "language": language or None}
    if target:
        body = _el("Say", say, message) + _el("Dial", {"timeout": 30},
                                              inner=_dial_target(target, {}))
    else:
        body = _el("Say", say, goodbye)
    return _document(body + "<Hangup />")


def say_only(texts: Iterable[str]) -> str:
    return _document("".join(_el("Say", None, text) for text in texts))


def say_then_hangup(text: str) -> str:
    return _document(_el("Say", None, text) + "<Hangup />")


def empty() -> str:
    return _document("")


def pause_only(seconds: int) -> str:
    return _document(_el("Pause", {"length": seconds}))


def pause_then_redirect(seconds: int, url: str) -> str:
    return _document(_el("Pause", {"length": seconds}) + _el("Redirect", {"method": "POST"}, url))


def leave_queue() -> str:
    return _document(_el("Leave"))


def _prompt(action: act.Say | act.Play | act.Pause) -> str:
    if isinstance(action, act.Say):
        return _el("Say", {"voice": action.voice or None, "language": action.language or None},
                   action.text)
    if isinstance(action, act.Play):
        return _el("Play", {"loop": action.loop if action.loop != 1 else None}, action.url)
    return _el("Pause", {"length": max(1, round(action.seconds))})


def _input_url(action: act.Gather, timed_out: bool = False, stream: str | None = None) -> str:
    query: dict[str, str | int] = {"node": action.node, "turn": action.turn}
    if stream:
        query["stream"] = stream
    if timed_out:
        query["timeout"] = 1
    return "/voice/input?" + urlencode(query)


def _gather(action: act.Gather, timeout: int | None = None, on_empty: bool = True,
            stream: str | None = None) -> str:
    return _el("Gather", {
        "input": "dtmf", "action": _input_url(action, stream=stream), "method": "POST",
        "timeout": timeout or action.timeout,
        "actionOnEmptyResult": True if on_empty else None,
        "finishOnKey": action.finish_on_key,
        "numDigits": action.num_digits if action.num_digits else None},
        inner="".join(_prompt(p) for p in action.prompts))


def _dial(action: act.Dial) -> str:
    url = "/voice/dial?" + urlencode({"node": action.node, "turn": action.turn})
    whisper = action.whisper and action.kind == "number"
    return _el("Dial", {"action": url, "method": "POST", "timeout": action.timeout,
                        "callerId": action.caller_id or None},
               inner=_dial_target(action.target, action.context, whisper=whisper,
                                  kind=action.kind))


def _dial_target(target: str, context: dict[str, str], whisper: bool = False,
                 kind: str = "") -> str:
    """Pass what the caller already said the way each kind of target can receive it."""
    if kind == "queue":  # an agent's line: the caller who waited longest, told first
        return _el("Queue", {"url": "/voice/queue/connect?" + urlencode({"queue": target}),
                             "method": "POST"}, target)
    if target.startswith("sip:"):
        headers = "&".join(f"X-{_header_name(k)}={quote(v, safe='')}" for k, v in context.items())
        uri = target if not headers else f"{target}?{headers[:SIP_HEADERS_MAX]}"
        return _el("Sip", None, uri)
    if target.startswith("client:"):
        inner = _el("Identity", None, target.removeprefix("client:")) + "".join(
            _el("Parameter", {"name": k, "value": v}) for k, v in context.items())
        return _el("Client", inner=inner)
    url = None
    if whisper and context:
        url = "/voice/whisper?" + urlencode({f"c_{k}": v for k, v in context.items()})
    return _el("Number", {"url": url, "method": "POST" if url else None}, target)


def _header_name(key: str) -> str:
    return "-".join(part.capitalize() for part in key.replace("_", "-").split("-") if part)
