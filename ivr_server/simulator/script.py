"""Scripted caller steps: one syntax for flow tests and `ivr call --script`.

    - hear: Hello Ada            # heard since the caller's last action, in order
    - not_hear: Hello            # not heard since the caller's last action
    - press: "2"                 # keys at the prompt (quote them), also on hold
    - silence: true              # no input until the prompt times out
    - speak: billing             # speech at a speech prompt (<Gather input="speech">)
    - say: 환불                  # spoken, recorded answer at a menu (espeak-ng, the flow's voice)
    - say_audio: answer.wav      # the same with a WAV file, relative to the script
    - transferred_to: client:priority-desk
    - agent: busy                # how the ringing transfer ends: answers, busy, no-answer, failed
    - agent_hears: support       # the whisper and parameters the agent got (answers if ringing)
    - wait: 120                  # on hold in a queue for that many seconds
    - agent_takes: 90            # an agent takes the queued caller and talks for 90 s
    - hangup: true
    - ended: true                # the server ended the call
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .caller import SimulatedCall
from .model import DialOutcome, norm
from .twiml_reader import DTMF_KEYS

STEP_KINDS: dict[str, type] = {
    "hear": str, "not_hear": str, "press": str, "silence": bool, "speak": str, "say": str,
    "say_audio": str, "hangup": bool,
    "transferred_to": str, "agent": str, "agent_hears": str, "ended": bool,
    "wait": float, "agent_takes": float}


@dataclass(frozen=True)
class Step:
    kind: str
    value: Any
    line: int = 0


class StepFailed(AssertionError):
    """An expectation was not met at the step on `line`."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def read_step(item: Any, line: int = 0, base: Path | None = None) -> Step:
    """Check one `- kind: value` item; ValueError says what is wrong with it.

    say_audio paths are resolved against `base` (the script's folder)."""
    if not isinstance(item, dict) or len(item) != 1:
        raise ValueError(f"a step is one of {', '.join(STEP_KINDS)} with its value, "
                         'e.g. - press: "1"')
    kind, value = next(iter(item.items()))
    want = STEP_KINDS.get(kind)
    if want is None:
        raise ValueError(f"unknown step {kind!r} (expected one of {', '.join(STEP_KINDS)})")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "press":
        if number and isinstance(value, int) and 0 <= value <= 9:
            value = str(value)
        elif not isinstance(value, str):
            raise ValueError(f'press: {value!r}: quote the keys, e.g. press: "0123#"')
        if not value or any(c not in DTMF_KEYS for c in value):
            raise ValueError(f"press: {value!r} holds something other than the keys {DTMF_KEYS}")
    elif want is str and number:
        value = str(value)
    elif want is float:
        if not number or value <= 0:
            raise ValueError(f"{kind}: expected a number of seconds, got {value!r}")
        value = float(value)
    if not isinstance(value, want):
        raise ValueError(f"{kind}: expected {'true' if want is bool else 'text'}, got {value!r}")
    if kind == "say_audio":
        path = (base or Path.cwd()) / value
        if not path.is_file():
            raise ValueError(f"say_audio: no file {str(path)!r}")
        value = str(path.resolve())
    if kind == "agent":
        try:
            DialOutcome.parse(value)
        except ValueError:
            raise ValueError(f"agent: {value!r} should be answers, busy, no-answer or failed") \
                from None
    return Step(kind, value, line)


def run_step(call: SimulatedCall, step: Step, voice: str = "en") -> None:
    """Do or check one step; StepFailed (with the step's line) when an expectation is unmet.

    `voice` is the espeak-ng voice `say` speaks with (ko, en, ...)."""
    kind, value = step.kind, step.value

    def fail(message: str) -> StepFailed:
        return StepFailed(step.line, message)

    if kind in ("hear", "not_hear"):
        heard = call.heard_since_input
        hit = next((i for i, h in enumerate(heard) if norm(value) in norm(h)), None)
        if kind == "hear" and hit is None:
            raise fail(f"expected to hear {value!r}; heard: {heard_listing(call)}")
        if kind == "not_hear" and hit is not None:
            raise fail(f"expected not to hear {value!r}; heard: {heard[hit]!r}")
        if hit is not None:
            call.consume_heard(hit)  # later hears may match later in the same prompt
    elif kind == "press":
        call.press(value)
    elif kind == "speak":
        call.speak(value)
    elif kind == "say":
        call.say(value, voice)
    elif kind == "say_audio":
        call.say(Path(value))
    elif kind == "silence" and value:
        was_gather = call.waiting_for == "input"
        call.silence()
        if was_gather and call.waiting_for == "record" and not call.heard_since_input:
            call.silence()  # a spoken-answer menu records next: a silent caller says nothing
    elif kind == "hangup" and value:
        call.hangup()
    elif kind in ("wait", "agent_takes"):
        if call.waiting_for != "queue":
            raise fail(f"{kind}: {value:g}, but the call is not in a queue (it is {call.status}"
                       + (f", waiting for {call.waiting_for})" if call.waiting_for else ")"))
        if kind == "wait":
            call.wait(value)
        else:
            call.taken_by_agent(value)
    elif kind == "ended":
        if call.ended != value:
            raise fail(f"expected the call {'to have ended' if value else 'to go on'}; it is "
                       f"{call.status}" + (f", waiting for {call.waiting_for}"
                                           if call.waiting_for else ""))
    elif kind == "transferred_to":
        got = call.transferred_to
        names = (norm(got.target), norm(f"{got.kind}:{got.target}")) if got else ()
        if norm(value) not in names:
            raise fail(f"expected a transfer to {value!r}; "
                       + (f"it went to {got.target!r}" if got else "there was no transfer"))
    elif kind == "agent":
        if call.waiting_for != "dial":
            raise fail(f"agent: {value}, but no transfer is ringing (the call is {call.status}"
                       + (f", waiting for {call.waiting_for})" if call.waiting_for else ")"))
        call.answer_dial(DialOutcome.parse(value))
    elif kind == "agent_hears":
        if call.waiting_for == "dial":
            call.answer_dial()
        got = call.transferred_to
        if got is None:
            raise fail(f"expected the agent to hear {value!r}; there was no transfer")
        told = got.agent_context()
        if not any(norm(value) in norm(t) for t in told):
            raise fail(f"expected the agent to hear {value!r}; the agent got: "
                       + (" / ".join(repr(t) for t in told) or "nothing"))


def finish(call: SimulatedCall) -> None:
    """End a scripted call as a caller would: a ringing transfer is answered, then hang up."""
    if call.waiting_for == "dial":
        call.answer_dial()
    call.hangup()


def heard_listing(call: SimulatedCall) -> str:
    text = " / ".join(repr(h) for h in call.heard_since_input) or "nothing"
    return text + (f" (the call has ended: {call.status})" if call.ended else "")
