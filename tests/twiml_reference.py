"""The TwiML renderer as it was, on twilio's VoiceResponse: the oracle for ivr_server.twiml.

ivr_server.twiml writes the same documents as strings (ElementTree was a tenth of a
webhook's CPU); tests/test_twiml_render.py checks they stay byte for byte the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from twilio.twiml.voice_response import Client, Dial, Gather, Sip, Start, Stop, VoiceResponse

from flows import actions as act

SIP_HEADERS_MAX = 1000  # Twilio caps custom SIP headers; keep well under it
# Characters XML 1.0 forbids even escaped; ElementTree writes them as they are, and one in a
# caller-supplied value (a whisper's context, a CRM name) would make the whole answer
# unparseable for Twilio.
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


SPEECH_SILENCE_SECONDS = 2  # a pause this long ends a recorded answer
KEYS_BEFORE_RECORDING = 3  # seconds a collect waits for a first key before recording


@dataclass(frozen=True)
class Listening:
    """How the server can hear callers: digit words known, where streams go, how long a
    recorded answer may be."""

    digits: bool
    stream_url: str
    max_recording_seconds: int = 10


def render(actions: Iterable[act.Action], *, listen: Listening | None = None,
           stop_stream: str | None = None) -> str:
    """TwiML for the actions. With `listen`, prompts that take speech also record it (path 1)
    or stream it (path 2); `stop_stream` ends the stream of the prompt just answered."""
    response = VoiceResponse()
    if stop_stream:
        stop = Stop()
        stop.stream(name=stop_stream)
        response.append(stop)
    for action in actions:
        if isinstance(action, act.Say | act.Play | act.Pause):
            _prompt(response, action)
        elif isinstance(action, act.Gather):
            _listen(response, action, _speech_mode(action, listen), listen)
        elif isinstance(action, act.Dial):
            response.append(_dial(action))
        elif isinstance(action, act.Enqueue):
            if action.words and action.speech == "stream" and listen is not None:
                _stream_hold(response, action, listen)
            query = urlencode({"node": action.node, "turn": action.turn})
            response.enqueue(action.queue, action=f"/voice/queue/result?{query}", method="POST",
                             wait_url=f"/voice/queue/wait?{query}", wait_url_method="POST")
        elif isinstance(action, act.HoldOffer):
            response.append(_hold_offer(action))
        elif isinstance(action, act.Leave):
            response.leave()
        elif isinstance(action, act.Hangup):
            response.hangup()
    return _document(response)


HOLD_STREAM = ".hold"  # a stream name's ending when it listens through a queue's wait


def _stream_hold(response: VoiceResponse, action: act.Enqueue, listen: Listening) -> None:
    """Stream the caller's audio through the wait, so "call me back" is heard on hold."""
    start = Start()
    name = f"{action.node}.{action.turn}{HOLD_STREAM}"
    media = start.stream(name=name, url=listen.stream_url, track="inbound_track")
    for key, value in (("node", action.node), ("turn", str(action.turn)), ("stream", name)):
        media.parameter(name=key, value=value)
    response.append(start)


def _hold_offer(action: act.HoldOffer) -> Gather:
    """Hold music that listens for the call-back key; nothing pressed falls through, the
    wait document ends, and Twilio asks the wait URL again."""
    query = urlencode({"node": action.node, "turn": action.turn})
    gather = Gather(input="dtmf", num_digits=1, timeout=2, method="POST",
                    action=f"/voice/queue/offer?{query}")
    for prompt in action.prompts:
        _prompt(gather, prompt)
    return gather


def _speech_mode(action: act.Gather, listen: Listening | None) -> str:
    if listen is None or not (action.synonyms or (action.spoken_digits and listen.digits)):
        return "off"
    return action.speech


def _listen(response: VoiceResponse, action: act.Gather, mode: str,
            listen: Listening | None) -> None:
    if mode == "record" and listen is not None:
        # Keys during the prompt (barge-in), then, with no key, record a short answer
        # that a key also ends; silence falls through to the timeout Redirect.
        menu = bool(action.choices)
        response.append(_gather(action, timeout=1 if menu else min(action.timeout,
                                                                   KEYS_BEFORE_RECORDING),
                                on_empty=False))
        response.record(action=_input_url(action), method="POST",
                        timeout=SPEECH_SILENCE_SECONDS, max_length=listen.max_recording_seconds,
                        play_beep=False, trim="trim-silence",
                        finish_on_key="".join(action.choices) or action.finish_on_key or "#")
        response.redirect(_input_url(action, timed_out=True), method="POST")
        return
    stream = None
    if mode == "stream" and listen is not None:
        # The caller's audio goes to our websocket while the prompt plays; keys still work.
        stream = stream_name(action)
        start = Start()
        media = start.stream(name=stream, url=listen.stream_url, track="inbound_track")
        for name, value in (("node", action.node), ("turn", str(action.turn)),
                            ("stream", stream)):
            media.parameter(name=name, value=value)
        response.append(start)
    response.append(_gather(action, stream=stream))
    # Twilio calls the action on an empty result; should it ever fall through, ask again.
    response.redirect(_input_url(action, timed_out=True, stream=stream), method="POST")


def stream_name(action: act.Gather) -> str:
    """Unique within the call, so the next answer can stop exactly this stream."""
    return f"{action.node}.{action.turn}"


def say_then_dial(message: str, target: str | None, goodbye: str, voice: str | None,
                  language: str | None) -> str:
    """The safe path: an apology and a person, or a polite goodbye when there is nobody."""
    response = VoiceResponse()
    if target:
        response.say(message, voice=voice or None, language=language or None)
        dial = Dial(timeout=30)
        _dial_target(dial, target, {})
        response.append(dial)
    else:
        response.say(goodbye, voice=voice or None, language=language or None)
    response.hangup()
    return _document(response)


def say_only(texts: Iterable[str]) -> str:
    response = VoiceResponse()
    for text in texts:
        response.say(text)
    return _document(response)


def say_then_hangup(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return _document(response)


def _document(response: VoiceResponse) -> str:
    """The TwiML text, without characters no XML parser accepts."""
    return NOT_XML.sub("", str(response))


def empty() -> str:
    return str(VoiceResponse())


def pause_only(seconds: int) -> str:
    response = VoiceResponse()
    response.pause(length=seconds)
    return _document(response)


def _prompt(parent: VoiceResponse | Gather, action: act.Say | act.Play | act.Pause) -> None:
    if isinstance(action, act.Say):
        parent.say(action.text, voice=action.voice or None, language=action.language or None)
    elif isinstance(action, act.Play):
        parent.play(action.url, loop=action.loop if action.loop != 1 else None)
    else:
        parent.pause(length=max(1, round(action.seconds)))


def _input_url(action: act.Gather, timed_out: bool = False, stream: str | None = None) -> str:
    query: dict[str, str | int] = {"node": action.node, "turn": action.turn}
    if stream:
        query["stream"] = stream
    if timed_out:
        query["timeout"] = 1
    return "/voice/input?" + urlencode(query)


def _gather(action: act.Gather, timeout: int | None = None, on_empty: bool = True,
            stream: str | None = None) -> Gather:
    gather = Gather(input="dtmf", action=_input_url(action, stream=stream), method="POST",
                    timeout=timeout or action.timeout,
                    action_on_empty_result=True if on_empty else None,
                    finish_on_key=action.finish_on_key,
                    num_digits=action.num_digits if action.num_digits else None)
    for prompt in action.prompts:
        _prompt(gather, prompt)
    return gather


def _dial(action: act.Dial) -> Dial:
    url = "/voice/dial?" + urlencode({"node": action.node, "turn": action.turn})
    dial = Dial(action=url, method="POST", timeout=action.timeout,
                caller_id=action.caller_id or None)
    whisper = action.whisper and action.kind == "number"
    _dial_target(dial, action.target, action.context, whisper=whisper, kind=action.kind)
    return dial


def _dial_target(dial: Dial, target: str, context: dict[str, str], whisper: bool = False,
                 kind: str = "") -> None:
    """Pass what the caller already said the way each kind of target can receive it."""
    if kind == "queue":  # an agent's line: the caller who waited longest, told first
        dial.queue(target, url="/voice/queue/connect?" + urlencode({"queue": target}),
                   method="POST")
    elif target.startswith("sip:"):
        headers = "&".join(f"X-{_header_name(k)}={quote(v, safe='')}" for k, v in context.items())
        uri = target if not headers else f"{target}?{headers[:SIP_HEADERS_MAX]}"
        dial.append(Sip(uri))
    elif target.startswith("client:"):
        client = Client()
        client.identity(target.removeprefix("client:"))
        for k, v in context.items():
            client.parameter(name=k, value=v)
        dial.append(client)
    else:
        url = None
        if whisper and context:
            url = "/voice/whisper?" + urlencode({f"c_{k}": v for k, v in context.items()})
        dial.number(target, url=url, method="POST" if url else None)


def _header_name(key: str) -> str:
    return "-".join(part.capitalize() for part in key.replace("_", "-").split("-") if part)
