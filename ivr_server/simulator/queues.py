"""Twilio's call queues for simulated calls: callers wait (`<Enqueue>`), agents take them
(`<Dial><Queue>`), and each side's webhooks are posted as Twilio posts them.

While a caller waits, Twilio plays the wait URL's TwiML and asks for it again when it has
played, with QueuePosition, QueueTime and CurrentQueueSize. An agent's `<Dial><Queue>`
takes the caller at the head of the line: the `<Queue url>` TwiML runs on the caller's
side first, then both are bridged; when the agent's call ends, the caller's Enqueue action
gets QueueResult=bridged (and the agent's Dial action DialCallStatus=completed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import twiml_reader as tw
from .model import SimulatorError, new_sid

if TYPE_CHECKING:
    from .caller import SimulatedCall

MAX_WAIT_TURNS = 500


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
    _fetch_wait(call)
    while call.wait_verbs and isinstance(call.wait_verbs[0], tw.Say):
        call._hear(call.wait_verbs.pop(0))  # what is said at once, before the hold music


def wait(call: SimulatedCall, seconds: float) -> list[str]:
    """Stay on hold for `seconds` of simulated time, playing the wait TwiML as Twilio does."""
    verb: tw.Enqueue = call._expect(tw.Enqueue, "wait in the queue")
    start = len(call.heard)
    until = call.elapsed + seconds
    for _ in range(MAX_WAIT_TURNS):
        if call._pending is not verb or call.elapsed >= until:
            return call.heard[start:]
        if not call.wait_verbs:
            _fetch_wait(call)
            continue
        item = call.wait_verbs.pop(0)
        if isinstance(item, tw.Say | tw.Play | tw.Pause):
            call._hear(item)
        elif isinstance(item, tw.Leave):
            _left(call, "leave")
        elif isinstance(item, tw.Hangup):
            call.hangup()
        elif isinstance(item, tw.Redirect):
            call.wait_verbs = call._fetch(item.method, call._abs(item.url), _queue_params(call))
        else:
            raise SimulatorError(f"<{type(item).__name__}> is not allowed in a wait URL")
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
    caller.wait_verbs = []
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
    call._pending, call.wait_verbs, call.queue_verb = None, [], None
    if verb.action:
        call._request(verb.method, call._abs(verb.action), params)  # Twilio ignores the answer


def _left(call: SimulatedCall, result: str) -> None:
    verb = call.queue_verb
    assert verb is not None
    if call.queues is not None:
        call.queues.leave(verb.name, call)
    params = {"QueueResult": result, "QueueSid": call.queues.sid(verb.name) if call.queues
              else "", "QueueTime": str(int(call.elapsed - call.queue_joined))}
    call._pending, call.wait_verbs, call.queue_verb = None, [], None
    if verb.action:
        call._load(verb.method, call._abs(verb.action), params)
    call._run()


def _fetch_wait(call: SimulatedCall) -> None:
    verb = call.queue_verb
    if verb is None or not verb.wait_url:
        call.wait_verbs = [tw.Pause(30)]  # Twilio's own hold music
        return
    call.wait_verbs = call._fetch(verb.wait_url_method, call._abs(verb.wait_url),
                                  _queue_params(call)) or [tw.Pause(1)]


def _queue_params(call: SimulatedCall) -> dict[str, str]:
    verb = call.queue_verb
    assert verb is not None and call.queues is not None
    line = call.queues.members.get(verb.name, [])
    position = line.index(call) + 1 if call in line else 0
    return {"QueueSid": call.queues.sid(verb.name), "QueuePosition": str(position),
            "QueueTime": str(int(call.elapsed - call.queue_joined)),
            "CurrentQueueSize": str(len(line)), "AvgQueueTime": "0"}
