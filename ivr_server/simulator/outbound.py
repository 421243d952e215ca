"""Calls the server places through Twilio's REST API (a callback): answered, or not.

The server POSTs Calls.json with To, From, Url (and Method), StatusCallback (with
StatusCallbackEvent, repeated or space-separated, and StatusCallbackMethod),
MachineDetection and Timeout. Given that request's form, as a contract mock recorded it
(a value or a list of values per field), these play the rest of Twilio's part:

- answer_outbound: the callee picks up. The StatusCallback hears the events asked for
  (initiated, ringing, then answered as CallStatus=in-progress); Url is fetched with
  Direction=outbound-api and CallStatus=in-progress (and AnsweredBy when MachineDetection
  was asked for) and its TwiML runs as an inbound call's does. When the call ends, the
  StatusCallback gets CallStatus=completed with CallDuration, whatever events were named.
- fail_outbound: the call never connects (busy, no-answer, failed, canceled): the
  StatusCallback hears initiated and ringing if asked for (a failed call never rings),
  then the status with CallDuration=0. Url is never asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import status_callback
from .caller import SimulatedCall
from .model import SimulatorError
from .queues import SimulatedQueues
from .recordings import RecordingsServer
from .transport import Transport

Fields = Mapping[str, str | list[str]]
EVENTS = ("initiated", "ringing", "answered", "completed")
FAILURES = ("busy", "no-answer", "failed", "canceled")
ANSWERED_BY = ("human", "machine_start", "machine_end_beep", "machine_end_silence",
               "machine_end_other", "fax", "unknown")
# What each MachineDetection mode can tell: Enable stops at the start of a machine's
# greeting; DetectMessageEnd waits for its end (the beep, silence, or neither).
DETECTION = {"Enable": ("human", "machine_start", "fax", "unknown"),
             "DetectMessageEnd": ("human", "machine_end_beep", "machine_end_silence",
                                  "machine_end_other", "fax", "unknown")}


def answer_outbound(transport: Transport, auth_token: str, fields: Fields, *,
                    answered_by: str = "human", call_sid: str | None = None,
                    account_sid: str | None = None, queues: SimulatedQueues | None = None,
                    recordings: RecordingsServer | None = None) -> SimulatedCall:
    """The callee picks up the call `fields` asked for: the returned call has fetched Url and
    run its TwiML as far as it goes, and goes on like a dialled inbound call (press, wait,
    hangup...)."""
    if answered_by not in ANSWERED_BY:
        raise ValueError(f"AnsweredBy is one of {', '.join(ANSWERED_BY)}, not {answered_by!r}")
    detection = _one(fields, "MachineDetection")
    if detection is not None and detection not in DETECTION:
        raise SimulatorError(f"MachineDetection={detection!r}: Twilio takes Enable or "
                             "DetectMessageEnd")
    if detection is not None and answered_by not in DETECTION[detection]:
        raise ValueError(f"with MachineDetection={detection} Twilio answers AnsweredBy="
                         f"{', '.join(DETECTION[detection])}, never {answered_by}")
    url = _on_server(transport, "Url", _required(fields, "Url"))
    method = _method(fields, "Method")
    call = _placed(transport, auth_token, fields, call_sid=call_sid, account_sid=account_sid,
                   queues=queues, recordings=recordings)
    _progress(call, fields, ("initiated", "ringing", "answered"))
    if detection is not None:
        call.extra_params["AnsweredBy"] = answered_by
    call.status = "in-progress"
    call._note("twilio", "answered", f"{call.to} picked up"
               + (f" (AnsweredBy={answered_by})" if detection is not None else ""))
    call._load(method, url, {})
    call._run()
    return call


def fail_outbound(transport: Transport, auth_token: str, fields: Fields, status: str, *,
                  call_sid: str | None = None, account_sid: str | None = None) -> None:
    """The call `fields` asked for never connects: it ends `status` (busy, no-answer,
    failed, canceled) and only the StatusCallback hears of it."""
    if status not in FAILURES:
        raise ValueError(f"an unconnected call ends {', '.join(FAILURES)}, not {status!r}")
    call = _placed(transport, auth_token, fields, call_sid=call_sid, account_sid=account_sid)
    _progress(call, fields, ("initiated",) if status == "failed" else ("initiated", "ringing"))
    call._end(status)


def _placed(transport: Transport, auth_token: str, fields: Fields, **kwargs: Any
            ) -> SimulatedCall:
    """The call as Twilio created it, its StatusCallback checked."""
    callback = _one(fields, "StatusCallback")
    call = SimulatedCall(transport, auth_token, from_=_required(fields, "From"),
                         to=_required(fields, "To"), incoming_path="",
                         status_path=_on_server(transport, "StatusCallback", callback)
                         if callback is not None else None,
                         extra_params={"Direction": "outbound-api"}, **kwargs)
    call.status_method = _method(fields, "StatusCallbackMethod")
    call._note("twilio", "call", f"{call.from_} -> {call.to} (outbound-api)")
    return call


def _progress(call: SimulatedCall, fields: Fields, events: tuple[str, ...]) -> None:
    """The progress events among `events` the request asked for, in order."""
    wanted = set()
    for value in _values(fields, "StatusCallbackEvent"):
        for event in value.replace(",", " ").split():
            if event not in EVENTS:
                raise SimulatorError(f"StatusCallbackEvent={event!r}: Twilio takes "
                                     f"{', '.join(EVENTS)}")
            wanted.add(event)
    for event in events:
        if event in wanted:
            call.status = "in-progress" if event == "answered" else event
            status_callback.post(call, call.status)


def _values(fields: Fields, name: str) -> list[str]:
    value = fields.get(name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _one(fields: Fields, name: str) -> str | None:
    values = _values(fields, name)
    return values[-1] if values else None


def _required(fields: Fields, name: str) -> str:
    value = _one(fields, name)
    if not value:
        raise SimulatorError(f"the Calls.json request has no {name}")
    return value


def _method(fields: Fields, name: str) -> str:
    method = (_one(fields, name) or "POST").upper()
    if method not in ("GET", "POST"):
        raise SimulatorError(f"{name}={method!r}: Twilio takes GET or POST")
    return method


def _on_server(transport: Transport, name: str, url: str) -> str:
    base = transport.base_url
    if not (url == base or url.startswith((base + "/", base + "?"))):
        raise SimulatorError(f"{name} {url!r} is not on the server under test ({base})")
    return url
