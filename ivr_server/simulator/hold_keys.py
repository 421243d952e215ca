"""Keys pressed at a prompt, and while on hold in a queue.

`collect` is what Twilio makes of keys at a `<Gather>` (numDigits and finishOnKey apply).
On hold, Twilio lets the wait URL's TwiML hold a `<Gather>`: keys go to the one listening
(the last met in the wait document playing, or the next one still to play in it, whose
prompts are heard first). Its action, resolved against the wait document's URL, gets
Digits with the queue parameters Twilio sends wait-URL requests (QueuePosition, QueueTime,
CurrentQueueSize, QueueSid, AvgQueueTime); what it answers replaces the rest of the wait
document and plays at once: `<Leave/>` takes the caller out of the queue (the Enqueue
action gets QueueResult=leave and the call goes on with what that answers), `<Say>`,
`<Play>` and `<Pause>` are heard, `<Redirect>` is followed, `<Hangup>` hangs up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import queues
from . import twiml_reader as tw
from .model import SimulatorError
from .twiml_reader import DTMF_KEYS

if TYPE_CHECKING:
    from .caller import SimulatedCall


def check_keys(keys: str) -> None:
    bad = [k for k in keys if k not in DTMF_KEYS]
    if not keys or bad:
        raise ValueError(f"keys are {DTMF_KEYS}, got {keys!r}")


def collect(gather: tw.Gather, keys: str) -> tuple[str, str, float]:
    """(Digits, FinishedOnKey, seconds it took) for `keys` pressed at `gather`."""
    check_keys(keys)
    if "dtmf" not in gather.input:
        raise SimulatorError("the prompt listens for speech only; keys are ignored")
    digits, finished = "", ""
    for key in keys:
        if gather.finish_on_key and key == gather.finish_on_key:
            finished = key
            break
        digits += key
        if gather.num_digits and len(digits) >= gather.num_digits:
            break
    seconds = 0.5 * len(keys) + (0 if finished or gather.num_digits == len(digits)
                                 else gather.timeout)
    return digits, finished, seconds


def press(call: SimulatedCall, keys: str) -> list[str]:
    """`keys` pressed while waiting in a queue; returns what was heard after them."""
    check_keys(keys)
    gather = _listener(call)
    if gather is None:
        raise SimulatorError("nothing is listening for keys while on hold")
    digits, finished, seconds = collect(gather, keys)
    call._note("caller", "press", keys)
    start = len(call.heard)
    call.elapsed += seconds
    call.hold.listening = False
    if digits or gather.action_on_empty_result:
        queues.gather_action(call, gather, {"Digits": digits, "FinishedOnKey": finished})
        queues.play_now(call)
    # else: only the finish key, and no actionOnEmptyResult: the hold goes on past the Gather
    return call.heard[start:]


def _listener(call: SimulatedCall) -> tw.Gather | None:
    """The wait TwiML's Gather that hears keys now, playing what comes before it if need be."""
    verb, line = call.queue_verb, call.queues
    waiting = verb is not None and line is not None and call in line.members.get(verb.name, [])
    if call.hold.gather is None and not call.wait_verbs and waiting:
        queues.fetch_wait(call)  # the document has played: Twilio asks the wait URL again
    if call.hold.gather is not None:
        return call.hold.gather
    ahead = 0
    while ahead < len(call.wait_verbs) and isinstance(call.wait_verbs[ahead],
                                                      tw.Say | tw.Play | tw.Pause):
        ahead += 1
    if ahead == len(call.wait_verbs) or not isinstance(call.wait_verbs[ahead], tw.Gather):
        return None
    for _ in range(ahead + 1):
        queues.play(call, call.wait_verbs.pop(0))  # heard up to and with the Gather's prompts
    return call.hold.gather
