"""A simulated phone call: plays Twilio's part against our server so calls run without a phone.

It posts the webhooks Twilio would post, signed as Twilio signs them, follows
whatever TwiML comes back (relative URLs, methods, fall-through, Redirects,
whispers), and records what the caller and the agent experienced.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urljoin

from . import hold_keys, queues, speaking, status_callback
from . import twiml_reader as tw
from .expectations import Expectations
from .media import MediaStream
from .model import DialOutcome, Moment, SimulatorError, Transfer, new_sid
from .queues import Hold, SimulatedQueues
from .recordings import RecordingsServer
from .transport import HttpResult, Transport, twilio_signature
from .twiml_reader import TwiMLError, Verb, parse_twiml
from .whisper import whisper

MAX_REQUESTS = 200
WORDS_PER_SECOND = 2.5


class SimulatedCall(Expectations):
    """One inbound call from `from_` to `to`, driven step by step by a test or a person
    (outbound.py makes one for a call the server placed). Status callbacks go to
    `status_path`, a path under the server or an absolute URL (status_callback.py)."""

    def __init__(self, transport: Transport, auth_token: str, *, from_: str = "+14155550100",
                 to: str = "+15005550006", incoming_path: str = "/voice/incoming",
                 status_path: str | None = "/voice/status", call_sid: str | None = None,
                 account_sid: str | None = None, dial_outcome: DialOutcome | None = None,
                 extra_params: Mapping[str, str] | None = None,
                 recordings: RecordingsServer | None = None,
                 queues: SimulatedQueues | None = None):
        self.transport, self.auth_token = transport, auth_token
        self.from_, self.to = from_, to
        self.incoming_path, self.status_path = incoming_path, status_path
        self.status_method, self.status_sequence = "POST", 0  # callbacks sent so far
        self.call_sid = call_sid or new_sid("CA")
        self.account_sid = account_sid or new_sid("AC")
        self.dial_outcome = dial_outcome  # None: stop at each <Dial> until answer_dial()
        self.extra_params = dict(extra_params or {})
        self.recordings = recordings  # serves say() audio; None: started on demand, owned
        self._owns_recordings = False
        self.last_recording_sid: str | None = None
        self.status = "new"
        self.ended = False
        self.elapsed = 0.0  # simulated seconds since the call was answered
        self.transcript: list[Moment] = []
        self.transfers: list[Transfer] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, url, status)
        self._turn_start = 0  # index into heard where the caller's last action happened
        self._url = ""
        self._verbs: list[Verb] = []
        self._pending: tw.Gather | tw.Dial | tw.Record | tw.Enqueue | None = None
        self.streams: dict[str | None, MediaStream] = {}  # open <Start><Stream>s by name
        self.queues = queues  # Twilio's queues, shared with the agents' simulated calls
        self.queue_verb: tw.Enqueue | None = None
        self.queue_joined = 0.0
        self.wait_verbs: list[Verb] = []  # the wait URL's TwiML still to play
        self.hold = Hold()  # where that TwiML came from, and its Gather
        self.bridged_caller: SimulatedCall | None = None  # an agent's: whom <Queue> gave

    # -- what the caller experienced -------------------------------------------------------

    @property
    def heard(self) -> list[str]:
        """Spoken texts and played URLs, in order, from the start of the call."""
        return [m.text for m in self.transcript if m.who == "ivr" and m.kind in ("say", "play")]

    @property
    def heard_since_input(self) -> list[str]:
        """What was heard after the caller's last action (press, silence, speech, dial)."""
        return self.heard[self._turn_start:]

    def consume_heard(self, count: int) -> None:
        """Mark the first `count` items of heard_since_input as checked (ordered expectations)."""
        self._turn_start = min(len(self.heard), self._turn_start + count)

    @property
    def last_heard(self) -> str | None:
        heard = self.heard
        return heard[-1] if heard else None

    @property
    def transferred_to(self) -> Transfer | None:
        return self.transfers[-1] if self.transfers else None

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def waiting_for(self) -> str | None:
        """'input' at a Gather, 'dial' while an agent rings, 'record' at a Record, 'queue'
        while on hold in a queue, else None."""
        return {tw.Gather: "input", tw.Dial: "dial", tw.Record: "record",
                tw.Enqueue: "queue"}.get(type(self._pending))

    # -- what the caller does -----------------------------------------------------------------

    def dial(self) -> list[str]:
        """Ring the number: Twilio posts the voice URL with CallStatus=ringing."""
        if self.status != "new":
            raise SimulatorError("this call was already dialled")
        self.status = "ringing"
        self._load("POST", self.transport.base_url + self.incoming_path, {})
        first = self._verbs[0] if self._verbs else None
        if not isinstance(first, tw.Reject):
            self.status = "in-progress"
        return self._run()

    def press(self, keys: str) -> list[str]:
        """Key in `keys` at the waiting <Gather> (numDigits and finishOnKey apply as on Twilio),
        or on hold, at the wait URL's Gather (hold_keys.py)."""
        if isinstance(self._pending, tw.Enqueue):
            return hold_keys.press(self, keys)
        gather = self._expect(tw.Gather, f"press {keys!r}")
        digits, finished, seconds = hold_keys.collect(gather, keys)
        self._note("caller", "press", keys)
        self.elapsed += seconds
        if not digits:  # only the finish key: nothing was entered
            self._gather_empty(gather, finished)
        else:
            self._gather_done(gather, {"Digits": digits, "FinishedOnKey": finished})
        return self._run()

    def speak(self, text: str, confidence: float = 0.92) -> list[str]:
        """Say `text` at a speech <Gather>; Twilio posts SpeechResult and Confidence."""
        gather = self._expect(tw.Gather, f"say {text!r}")
        if "speech" not in gather.input:
            raise SimulatorError("the prompt listens for keys only; speech is ignored")
        self._note("caller", "speak", text)
        self.elapsed += len(text.split()) / WORDS_PER_SECOND + 1
        self._gather_done(gather, {"SpeechResult": text, "Confidence": f"{confidence:.2f}"})
        return self._run()

    def silence(self) -> list[str]:
        """Say and press nothing until the prompt times out."""
        pending = self._expect((tw.Gather, tw.Record), "stay silent")
        self._note("caller", "silence", f"{pending.timeout}s")
        self.elapsed += pending.timeout
        if isinstance(pending, tw.Gather):
            self._gather_empty(pending, "")
        else:
            self._pending = None  # nothing recorded: Twilio moves on to the next verb
        return self._run()

    def record(self, seconds: int = 5, finish_key: str = "#") -> list[str]:
        """Leave a message at a <Record>, ended by `finish_key` (or by silence if empty)."""
        return speaking.record(self, seconds, finish_key)

    def say(self, audio: speaking.Audio, voice: str = "en", *,
            realtime: bool = False) -> list[str]:
        """Speak at a <Record> (WAV bytes or file, or text espeak-ng synthesizes in `voice`);
        the server fetches it from `recordings` (its twilio.api_base_url). With a <Stream>
        open, the audio is streamed instead (paced like a phone line with `realtime`)."""
        return speaking.say(self, audio, voice, realtime=realtime)

    def wait(self, seconds: float) -> list[str]:
        """Hold in the queue for `seconds`, hearing what the wait URL says."""
        return queues.wait(self, seconds)

    def taken_by_agent(self, seconds: float) -> list[str]:
        """An agent (not simulated here) takes this caller off hold and talks for `seconds`."""
        self._expect(tw.Enqueue, "be taken by an agent")
        return queues.taken(self, seconds)

    def answer_dial(self, outcome: DialOutcome | None = None) -> list[str]:
        """End the ringing <Dial> as `outcome` (default: the agent answers for 60 s)."""
        self._expect(tw.Dial, "end the transfer")
        self._end_dial(outcome or self.dial_outcome or DialOutcome.answered())
        return self._run()

    def hangup(self) -> None:
        """The caller hangs up. Twilio reports a ringing Dial to its action, then the status."""
        if self.ended:
            return
        if self.status == "new":
            raise SimulatorError("dial() before hanging up")
        self._note("caller", "hangup", "")
        if isinstance(self._pending, tw.Enqueue):
            queues.hung_up(self)
        dial = self._pending
        if isinstance(dial, tw.Dial) and dial.action:
            self.transfers[-1].status = "canceled"
            self._request(dial.method, self._abs(dial.action), {
                "DialCallStatus": "canceled", "DialCallSid": new_sid("CA"),
                "CallStatus": "completed"})  # Twilio ignores this answer
        self._end("completed")

    # -- following the TwiML ---------------------------------------------------------------

    def _run(self) -> list[str]:
        start = self._turn_start
        while not self.ended and self._pending is None:
            if not self._verbs:
                self._end("completed")  # no verbs left: Twilio hangs up
                break
            verb = self._verbs.pop(0)
            if isinstance(verb, tw.Say | tw.Play | tw.Pause):
                self._hear(verb)
            elif isinstance(verb, tw.Gather):
                for prompt in verb.prompts:
                    self._hear(prompt)
                self._pending = verb
            elif isinstance(verb, tw.Redirect):
                self._load(verb.method, self._abs(verb.url), {})
            elif isinstance(verb, tw.Dial):
                self._start_dial(verb)
            elif isinstance(verb, tw.Hangup):
                self._end("completed")
            elif isinstance(verb, tw.Reject):
                status = "completed" if self.status == "in-progress" else \
                    "busy" if verb.reason == "busy" else "no-answer"
                self._end(status)
            elif isinstance(verb, tw.Record):
                self._note("ivr", "beep", "(recording)" if verb.play_beep else "(recording, "
                           "no beep)")
                self._pending = verb
            elif isinstance(verb, tw.StartStream):
                self.streams[verb.name] = MediaStream(verb, self.transport, self.auth_token,
                                                      call_sid=self.call_sid,
                                                      account_sid=self.account_sid)
            elif isinstance(verb, tw.StopStream):
                for name in [n for n in self.streams if verb.name in (None, n)]:
                    self.streams.pop(name).stop()
            elif isinstance(verb, tw.Enqueue):
                queues.enqueue(self, verb)
            elif isinstance(verb, tw.Leave):
                pass  # outside a queue's wait URL Twilio ignores it
        return self.heard[start:]

    def _hear(self, verb: tw.Say | tw.Play | tw.Pause, who: str = "ivr") -> None:
        if isinstance(verb, tw.Say):
            self._note(who, "say", verb.text)
            self.elapsed += max(1, verb.loop) * len(verb.text.split()) / WORDS_PER_SECOND
        elif isinstance(verb, tw.Play):
            self._note(who, "play", verb.url or f"digits {verb.digits}")
            self.elapsed += max(1, verb.loop) * 5
        else:
            self._note(who, "pause", f"{verb.length}s")
            self.elapsed += verb.length

    def _gather_done(self, gather: tw.Gather, params: dict[str, str]) -> None:
        self._pending = None
        self._load(gather.method, self._abs(gather.action) if gather.action else self._url,
                   params)

    def _gather_empty(self, gather: tw.Gather, finished: str) -> None:
        self._pending = None
        if gather.action_on_empty_result:
            self._load(gather.method, self._abs(gather.action) if gather.action else self._url,
                       {"Digits": "", "FinishedOnKey": finished})
        # else: Twilio falls through to the verb after the <Gather>

    def _start_dial(self, dial: tw.Dial) -> None:
        first = dial.targets[0]
        transfer = Transfer(first.target, first.kind, dict(first.params), dial.caller_id,
                            dial.timeout, tuple(t.target for t in dial.targets[1:]))
        self.transfers.append(transfer)
        self._note("twilio", "dial", f"{transfer} {_params_text(first.params)}".strip())
        self._pending = dial
        if first.kind == "queue":
            self.bridged_caller = queues.take_caller(self, first)
            if self.bridged_caller is None:
                self._note("twilio", "queue-empty", first.target)
        if self.dial_outcome is not None:
            self._end_dial(self.dial_outcome)

    def _end_dial(self, outcome: DialOutcome) -> None:
        dial = self._pending
        assert isinstance(dial, tw.Dial)
        transfer, child = self.transfers[-1], new_sid("CA")
        status, duration = outcome.status, outcome.duration
        caller, self.bridged_caller = self.bridged_caller, None
        if dial.targets[0].kind == "queue" and caller is None:
            status, duration = "no-answer", 0  # nobody was waiting
        elif status == "completed" and dial.targets[0].url and caller is None \
                and not whisper(self, dial, dial.targets[0], child, transfer):
            transfer.declined, status, duration = True, "no-answer", 0
        if caller is not None:
            queues.bridged_call_ended(caller, duration if status == "completed" else 0)
        transfer.status, transfer.duration = status, duration if status == "completed" else None
        self._note("twilio", "dial-end", f"{status}" + (f" after {duration}s"
                                                        if status == "completed" else ""))
        self.elapsed += duration if status == "completed" else \
            dial.timeout if status == "no-answer" else 1
        self._pending = None
        params = {"DialCallStatus": status, "DialCallSid": child}
        if status == "completed":
            params["DialCallDuration"] = str(duration)
        if dial.action:
            self._load(dial.method, self._abs(dial.action), params)
        # else: Twilio carries on with the verbs after the <Dial>

    def _expect(self, kind: type | tuple[type, ...], doing: str) -> Any:
        if self.status == "new":
            raise SimulatorError(f"cannot {doing}: dial() first")
        if self.ended:
            raise SimulatorError(f"cannot {doing}: the call has ended ({self.status})")
        if not isinstance(self._pending, kind):
            if isinstance(self._pending, tw.Dial):
                raise SimulatorError(f"cannot {doing}: the transfer to {self.transfers[-1]} is "
                                     "still ringing; say how it ends (agent: answers / busy / "
                                     "no-answer / failed) or hang up")
            raise SimulatorError(f"cannot {doing}: the call is waiting for {self.waiting_for}")
        return self._pending

    # -- requests ------------------------------------------------------------------------

    def _load(self, method: str, url: str, extra: Mapping[str, str]) -> None:
        self._verbs = self._fetch(method, url, extra)
        self._url = url

    def _fetch(self, method: str, url: str, extra: Mapping[str, str], *,
               base: bool = True) -> list[Verb]:
        result = self._request(method, url, extra, base=base)
        where = f"{method} {url}"
        if result.status != 200:
            raise SimulatorError(f"{where} answered HTTP {result.status}: {result.body[:300]!r}")
        if result.body.strip() and "xml" not in result.content_type.lower():
            raise SimulatorError(f"{where} answered {result.content_type or 'no Content-Type'}"
                                 ", not text/xml")
        try:
            return parse_twiml(result.body)
        except TwiMLError as exc:
            raise SimulatorError(f"{where} answered invalid TwiML: {exc}") from None

    def _request(self, method: str, url: str, extra: Mapping[str, str], *,
                 base: bool = True) -> HttpResult:
        if len(self.requests) >= MAX_REQUESTS:
            raise SimulatorError(f"more than {MAX_REQUESTS} requests in one call: a loop?")
        params = {**(self._params() if base else {}), **extra}
        body: dict[str, str] = params
        if method == "GET":
            url = url + ("&" if "?" in url else "?") + urlencode(params)
            body = {}
        headers = {"X-Twilio-Signature": twilio_signature(self.auth_token, url, body),
                   "User-Agent": "TwilioProxy/1.1 (ivr-simulator)",
                   "I-Twilio-Idempotency-Token": secrets.token_hex(8)}
        result = self.transport.send(method, url, body, headers)
        self.requests.append((method, url, result.status))
        return result

    def _params(self) -> dict[str, str]:
        country = "US" if self.from_.startswith("+1") else ""
        return {"CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.from_,
                "To": self.to, "Caller": self.from_, "Called": self.to,
                "CallStatus": self.status, "Direction": "inbound", "ApiVersion": "2010-04-01",
                "FromCountry": country, "ToCountry": "US" if self.to.startswith("+1") else "",
                "CallerCountry": country, "CalledCountry": "US" if self.to.startswith("+1") else "",
                **self.extra_params}

    def _end(self, status: str) -> None:
        self.ended, self.status = True, status
        self._pending, self._verbs = None, []
        self._note("twilio", "end", f"{status} after {int(self.elapsed)}s")
        for stream in self.streams.values():
            stream.stop()
        self.streams.clear()
        if self._owns_recordings and self.recordings is not None:
            self.recordings.close()
        status_callback.post(self, status, {"CallDuration": str(int(self.elapsed))})

    def _abs(self, ref: str) -> str:
        return urljoin(self._url, ref)

    def _note(self, who: str, kind: str, text: str) -> None:
        if who == "caller" or kind == "dial-end":
            self._turn_start = len(self.heard)  # what follows answers this action
        self.transcript.append(Moment(who, kind, text))


def _params_text(params: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())
