"""How a waiting node takes the caller's answer, a lookup's result or a transfer's end.

A mixin of the engine's run: it routes, retries and logs through the run's helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .events import DigitsEntered, LookupDone, NoInput, SpeechHeard, TransferEnded
from .nodes import CollectNode, HttpNode, MenuNode, TransferNode
from .schema_base import Prompt
from .validators import digits_valid

if TYPE_CHECKING:
    from . import actions as act
    from .session import Session

ANSWERED = {"completed", "answered"}
DEFAULT_GOODBYE = "Sorry, nobody is available to take your call right now. Please call again later."


class Answers:
    """Handlers for the events a waiting node receives (see engine._Run)."""

    if TYPE_CHECKING:  # provided by the run
        session: Session
        out: list[act.Action]

        def log(self, kind: str, node: str | None, **data: Any) -> None: ...
        def route(self, src: str, dst: str, reason: str) -> None: ...
        def finish(self) -> None: ...
        def say_text(self, text: str) -> None: ...
        def retry_or_fallback(self, name: str, node: MenuNode | CollectNode,
                              reprompt: list[Prompt]) -> None: ...

    def menu_answer(self, name: str, node: MenuNode, event: DigitsEntered | NoInput) -> None:
        digits = event.digits if isinstance(event, DigitsEntered) else ""
        key = digits[:1]
        option = next((o for o in node.options if o.key == key), None) if key else None
        if option is not None:
            label = option.label or option.key
            self.log("key", name, digits=key, choice=label)
            self.session.choices.append(label)
            if node.save_as:
                self.session.vars[node.save_as] = label
            self.route(name, option.goto, f"pressed {key}")
            return
        kind = "no_input" if not digits else "no_match"
        self.log(kind, name, digits=digits or None)
        self.retry_or_fallback(name, node, node.no_input if not digits else node.no_match)

    def menu_speech(self, name: str, node: MenuNode, event: SpeechHeard) -> None:
        option = next((o for o in node.options if o.key == event.choice), None)
        self.log_speech(name, event, choice=(option.label or option.key) if option else None)
        if option is None:
            kind = "no_input" if not (event.text or event.error) else "no_match"
            self.log(kind, name, heard=event.text or None)
            reprompt = node.no_input if kind == "no_input" else node.no_match
            self.retry_or_fallback(name, node, reprompt)
            return
        label = option.label or option.key
        self.session.choices.append(label)
        if node.save_as:
            self.session.vars[node.save_as] = label
        self.route(name, option.goto, f"said {event.text!r}")

    def collect_speech(self, name: str, node: CollectNode, event: SpeechHeard) -> None:
        """Digits said aloud are checked like keyed ones; anything else is not a number."""
        self.log_speech(name, event, digits=_mask(event.digits) if event.digits else None)
        if event.digits:
            self.collect_answer(name, node, DigitsEntered(event.digits))
        elif not (event.text or event.error):
            self.log("no_input", name)
            self.retry_or_fallback(name, node, node.no_input)
        else:
            self.log("invalid", name, heard=event.text or None)
            self.retry_or_fallback(name, node, node.invalid)

    def log_speech(self, name: str, event: SpeechHeard, **matched: Any) -> None:
        """What was heard and how, so a supervisor can see why the call went where it did."""
        self.log("speech", name, text=event.text, confidence=round(event.confidence, 3),
                 error=event.error, audio_seconds=round(event.audio_seconds, 2),
                 decode_ms=round(event.decode_ms, 1), path=event.path, **matched)

    def collect_answer(self, name: str, node: CollectNode, event: DigitsEntered | NoInput) -> None:
        digits = event.digits.rstrip("#*") if isinstance(event, DigitsEntered) else ""
        if not digits:
            self.log("no_input", name)
            self.retry_or_fallback(name, node, node.no_input)
            return
        ok = digits_valid(digits, min_digits=node.min_digits, max_digits=node.max_digits,
                          luhn=node.validate_as == "luhn", pattern=node.pattern)
        if not ok:
            self.log("invalid", name, digits=_mask(digits))
            self.retry_or_fallback(name, node, node.invalid)
            return
        self.log("collected", name, var=node.save_as, digits=_mask(digits))
        self.session.vars[node.save_as] = digits
        self.route(name, node.next, "valid entry")

    def lookup_answer(self, name: str, node: HttpNode, event: LookupDone) -> None:
        if not event.ok:
            self.log("lookup_failed", name, status=event.status, error=event.error,
                     elapsed_ms=event.elapsed_ms)
            self.route(name, node.on_failure, "lookup failed")
            return
        saved = {}
        for var, dotted in node.save.items():
            value = _dig(event.data, dotted)
            if value is not None:
                self.session.vars[var] = value
                saved[var] = value
        if saved:
            self.session.known_caller = True
        self.log("lookup", name, status=event.status, saved=sorted(saved),
                 elapsed_ms=event.elapsed_ms)
        self.route(name, node.next, "lookup answered")

    def transfer_ended(self, name: str, node: TransferNode, event: TransferEnded) -> None:
        self.log("transfer_ended", name, status=event.status, duration=event.duration)
        if event.status in ANSWERED:
            self.session.outcome = "transferred"
            self.finish()
            return
        if node.on_failure:
            self.route(name, node.on_failure, f"transfer {event.status}")
            return
        self.session.outcome = "failed"
        self.say_text(DEFAULT_GOODBYE)
        self.finish()


def _dig(data: Any, dotted: str) -> Any:
    cur = data
    for part in dotted.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur if isinstance(cur, str | int | float | bool) else None


def _mask(digits: str) -> str:
    """Keep the call log useful without storing whole account or card numbers."""
    return digits if len(digits) <= 4 else "*" * (len(digits) - 4) + digits[-4:]
