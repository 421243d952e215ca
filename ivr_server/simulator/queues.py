"""Twilio's call queues for simulated calls: callers wait (`<Enqueue>`), agents take them
(`<Dial><Queue>`), and each side's webhooks are posted as Twilio posts them.

While a caller waits, Twilio plays the wait URL's TwiML and asks for it again when it has
played, with QueuePosition, QueueTime and CurrentQueueSize. An agent's `<Dial><Queue>`
takes the caller at the head of the line: the `<Queue url>` TwiML runs on the caller's
side first, then both are bridged; when the agent's call ends, the caller's Enqueue action
gets QueueResult=bridged (and the agent's Dial action DialCallStatus=completed).

The wait TwiML may hold a `<Gather>`: its prompts play, then it listens for its timeout (an
empty result posts its action only with actionOnEmptyResult) before the next verb plays.
Keys pressed on hold go to it (hold_keys.py); what its action answers replaces the rest of
the wait document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from . import twiml_reader as tw
from .model import SimulatorError, new_sid

if TYPE_CHECKING:
    from .caller import SimulatedCall

MAX_WAIT_TURNS = 500


@dataclass
class Hold:
    """The wait URL's TwiML as it plays for one caller."""

    url: str = ""  # where the document playing came from: its relative URLs resolve here
    gather: tw.Gather | None = None  # the last <Gather> met in it
    listening: bool = False  # that Gather's prompts have played; its timeout has not run


class SimulatedQueues:
    """FIFO queues by name, shared by every simulated call of one test or session."""

    def __init__(self) -> None:
        self.members: dict[str, list[SimulatedCall]] = {}
        self.sids: dict[str, str] = {}

    def sid(self, name: str) -> str:
        return self.sids.setdefault(name, new_sid("QU"))

    def join(self, name: str, call: SimulatedCall) -> None:
        self.members.setdefault(name, []).append(call)

    def leave(self, name: str, call: SimulatedCall) -> None:
        if call in self.members.get(name, []):
            self.members[name].remove(call)

    def position(self, name: str, call: SimulatedCall) -> int:
        return self.members.get(name, []).index(call) + 1

    def size(self, name: str) -> int:
        return len(self.members.get(name, []))

    def take(self, name: str) -> SimulatedCall | None:
        line = self.members.get(name, [])
        return line.pop(0) if line else None


def enqueue(call: SimulatedCall, verb: tw.Enqueue) -> None:
    """The caller joins: Twilio asks the wait URL at once."""
    if call.queues is None:
        raise SimulatorError("<Enqueue>: give the call a SimulatedQueues (queues=...)")
    call.queues.join(verb.name, call)
    call.queue_verb, call.queue_joined = verb, call.elapsed
    call._note("twilio", "enqueue", verb.name)
    call._pending = verb
    fetch_wait(call)
    while call.wait_verbs and isinstance(call.wait_verbs[0], tw.Say):
        call._hear(call.wait_verbs.pop(0))  # what is said at once, before the hold music
    first = call.wait_verbs[0] if call.wait_verbs else None
    if isinstance(first, tw.Gather) and all(isinstance(p, tw.Say) for p in first.prompts):
        play(call, call.wait_verbs.pop(0))  # a spoken prompt too; then it listens


def wait(call: SimulatedCall, seconds: float) -> list[str]:
    """Stay on hold for `seconds` of simulated time, playing the wait TwiML as Twilio does."""
    verb: tw.Enqueue = call._expect(tw.Enqueue, "wait in the queue")
    start = len(call.heard)
    until = call.elapsed + seconds
    for _ in range(MAX_WAIT_TURNS):
        if call._pending is not verb or call.elapsed >= until:
            return call.heard[start:]
        if call.hold.listening:
            _time_out(call)
        elif not call.wait_verbs:
            fetch_wait(call)
        else:
            play(call, call.wait_verbs.pop(0))
    raise SimulatorError(f"the wait URL answered {MAX_WAIT_TURNS} times without time passing")


def take_caller(agent: SimulatedCall, target: tw.DialTarget) -> SimulatedCall | None:
    """An agent's `<Dial><Queue>`: the head of the line is told, then bridged."""
    if agent.queues is None:
        raise SimulatorError("<Dial><Queue>: give the call a SimulatedQueues (queues=...)")
    caller = agent.queues.take(target.target)
    if caller is None:
        return None
    if target.url:
        params = {**_queue_params(caller), "DequeingCallSid": agent.call_sid}
        for item in caller._fetch(target.method, caller._abs(target.url), params):
            if isinstance(item, tw.Say | tw.Play | tw.Pause):
                caller._hear(item)
    caller._note("twilio", "bridged", f"to agent call {agent.call_sid}")
    caller.wait_verbs, caller.hold = [], Hold()
    return caller


def taken(caller: SimulatedCall, seconds: float) -> list[str]:
    """An agent outside the simulation takes the caller (no `<Queue url>` runs)."""
    start = len(caller.heard)
    verb = caller.queue_verb
    if verb is not None and caller.queues is not None:
        caller.queues.leave(verb.name, caller)
    caller._note("twilio", "bridged", f"to an agent for {seconds:g}s")
    bridged_call_ended(caller, int(seconds))
    return caller.heard[start:]


def bridged_call_ended(caller: SimulatedCall, duration: int) -> None:
    """The agent hung up: the caller's Enqueue action hears how it went."""
    caller.elapsed += duration
    _left(caller, "bridged")


def hung_up(call: SimulatedCall) -> None:
    """The caller hangs up on hold: Twilio still reports it to the Enqueue action."""
    verb = call.queue_verb
    if verb is None:
        return
    if call.queues is not None:
        call.queues.leave(verb.name, call)
    params = {"QueueResult": "hangup", "QueueTime": str(int(call.elapsed - call.queue_joined)),
              "CallStatus": "completed"}
    _off_hold(call)
    if verb.action:
        call._request(verb.method, call._abs(verb.action), params)  # Twilio ignores the answer


def redirected_out(call: SimulatedCall) -> None:
    """The server moved the caller out of the queue through the REST API: Twilio reports
    QueueResult=redirected to the Enqueue action (its answer is not used)."""
    verb = call.queue_verb
    if verb is None:
        return
    if call.queues is not None:
        call.queues.leave(verb.name, call)
    params = {"QueueResult": "redirected",
              "QueueTime": str(int(call.elapsed - call.queue_joined))}
    _off_hold(call)
    if verb.action:
        call._request(verb.method, call._abs(verb.action), params)


def _left(call: SimulatedCall, result: str) -> None:
    verb = call.queue_verb
    assert verb is not None
    if call.queues is not None:
        call.queues.leave(verb.name, call)
    params = {"QueueResult": result, "QueueSid": call.queues.sid(verb.name) if call.queues
              else "", "QueueTime": str(int(call.elapsed - call.queue_joined))}
    _off_hold(call)
    if verb.action:
        call._load(verb.method, call._abs(verb.action), params)
    call._run()


def play(call: SimulatedCall, item: tw.Verb) -> None:
    """Play one verb of the wait TwiML (those Twilio allows there)."""
    if isinstance(item, tw.Say | tw.Play | tw.Pause):
        call._hear(item)
    elif isinstance(item, tw.Gather):
        for prompt in item.prompts:
            call._hear(prompt)
        call.hold.gather, call.hold.listening = item, True
    elif isinstance(item, tw.Leave):
        _left(call, "leave")
    elif isinstance(item, tw.Hangup):
        call.hangup()
    elif isinstance(item, tw.Redirect):
        _load_wait(call, item.method, urljoin(call.hold.url, item.url), {})
    else:
        raise SimulatorError(f"<{type(item).__name__}> is not allowed in a wait URL")


def play_now(call: SimulatedCall) -> None:
    """Play the wait TwiML at once until it has played, a Gather listens, or the caller left."""
    verb = call.queue_verb
    while verb is not None and call._pending is verb and call.wait_verbs \
            and not call.hold.listening:
        play(call, call.wait_verbs.pop(0))


def gather_action(call: SimulatedCall, gather: tw.Gather, params: dict[str, str]) -> None:
    """A wait TwiML's Gather ends: its action (relative to the wait document) gets the result
    with the queue parameters, and what it answers replaces the rest of the document."""
    url = urljoin(call.hold.url, gather.action) if gather.action else call.hold.url
    _load_wait(call, gather.method, url, params)


def fetch_wait(call: SimulatedCall) -> None:
    """Ask the wait URL for what to play next (Twilio's own music without one)."""
    verb = call.queue_verb
    if verb is None or not verb.wait_url:
        call.wait_verbs, call.hold = [tw.Pause(30)], Hold()  # Twilio's own hold music
        return
    _load_wait(call, verb.wait_url_method, call._abs(verb.wait_url), {})
    call.wait_verbs = call.wait_verbs or [tw.Pause(1)]


def _load_wait(call: SimulatedCall, method: str, url: str, extra: dict[str, str]) -> None:
    call.wait_verbs = call._fetch(method, url, {**_queue_params(call), **extra})
    call.hold = Hold(url)


def _time_out(call: SimulatedCall) -> None:
    """Nothing was pressed at the listening Gather: Twilio waits `timeout`, then moves on."""
    gather = call.hold.gather
    assert gather is not None
    call.hold.listening = False
    call.elapsed += gather.timeout
    if gather.action_on_empty_result:
        gather_action(call, gather, {"Digits": "", "FinishedOnKey": ""})
    # else: the verb after the <Gather> plays


def _off_hold(call: SimulatedCall) -> None:
    call._pending, call.wait_verbs, call.queue_verb, call.hold = None, [], None, Hold()


def _queue_params(call: SimulatedCall) -> dict[str, str]:
    verb = call.queue_verb
    assert verb is not None and call.queues is not None
    line = call.queues.members.get(verb.name, [])
    position = line.index(call) + 1 if call in line else 0
    return {"QueueSid": call.queues.sid(verb.name), "QueuePosition": str(position),
            "QueueTime": str(int(call.elapsed - call.queue_joined)),
            "CurrentQueueSize": str(len(line)), "AvgQueueTime": "0"}
