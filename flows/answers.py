"""How a waiting node takes the caller's answer, a lookup's result or a transfer's end.

A mixin of the engine's run: it routes, retries and logs through the run's helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import actions
from .errors import FlowRuntimeError
from .events import (
    CallbackBooked,
    DigitsEntered,
    LookupDone,
    NoInput,
    QueueLeft,
    QueueWaiting,
    SpeechHeard,
    TransferEnded,
)
from .nodes import (
    AgentLineNode,
    Announce,
    CallbackNode,
    CollectNode,
    EnqueueNode,
    HttpNode,
    MenuNode,
    TransferNode,
)
from .schema_base import Prompt
from .templates import TemplateError, render
from .validators import digits_valid

if TYPE_CHECKING:
    from . import actions as act
    from .loader import Flow
    from .session import Session

ANSWERED = {"completed", "answered"}
QUEUE_FAILED = {"queue-full", "error", "system-error"}
MIN_HOLD_SECONDS = 10  # a wait URL answer must take time, or Twilio asks again at once
DEFAULT_GOODBYE = "Sorry, nobody is available to take your call right now. Please call again later."


class Answers:
    """Handlers for the events a waiting node receives (see engine._Run)."""

    if TYPE_CHECKING:  # provided by the run
        session: Session
        out: list[act.Action]
        flow: Flow

        def log(self, kind: str, node: str | None, **data: Any) -> None: ...
        def route(self, src: str, dst: str, reason: str) -> None: ...
        def finish(self) -> None: ...
        def say_text(self, text: str) -> None: ...
        def retry_or_fallback(self, name: str, node: MenuNode | CollectNode,
                              reprompt: list[Prompt]) -> None: ...
        def context(self) -> dict[str, Any]: ...
        def prompt_actions(self, name: str, prompts: list[Prompt]) -> list[act.Action]: ...

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


    # -- queues --------------------------------------------------------------------------

    def queue_waiting(self, name: str, node: EnqueueNode, event: QueueWaiting) -> None:
        """One turn of the wait music: leave if waited too long, else announce when due."""
        queue = self.session.queue
        if node.max_wait and event.waited >= node.max_wait and not queue.get("leaving"):
            queue["leaving"] = "max_wait"
        if queue.get("leaving"):  # waited too long, or asked for a call back by text
            self.log("queue_leave", name, reason=queue["leaving"], waited=round(event.waited))
            self.out.append(actions.Leave())
            return
        if node.announce is not None and _announce_due(node.announce, queue, event):
            self.announce(name, node.announce, event)
        hold = self.prompt_actions(name, node.hold)
        seconds = sum(a.seconds for a in hold if isinstance(a, actions.Pause))
        if not any(isinstance(a, actions.Say | actions.Play) for a in hold) \
                and seconds < MIN_HOLD_SECONDS:
            hold.append(actions.Pause(MIN_HOLD_SECONDS - seconds))
        if node.offer_callback is not None and node.callback and \
                _offer_due(node, queue, event):
            self.offer_callback(name, node, event, hold)
            return
        self.out.extend(hold)

    def offer_callback(self, name: str, node: EnqueueNode, event: QueueWaiting,
                       hold: list[act.Action]) -> None:
        """The key works all through the hold music once offered; the offer itself is
        spoken again only every `every` seconds."""
        offer = node.offer_callback
        assert offer is not None
        queue = self.session.queue
        said: list[act.Action] = []
        last = queue.get("offered_at")
        if last is None or event.waited - last >= offer.every:
            try:
                text = render(offer.say, {**self.context(), "key": offer.key})
            except TemplateError as exc:
                raise FlowRuntimeError(self.flow.name, name, f"offer_callback.say: {exc}",
                                       self.flow.line_of(name, "offer_callback", "say")) \
                    from None
            said = [actions.Say(text, self.flow.model.voice, self.flow.model.language)]
            if last is None:
                self.log("callback_offered", name, waited=round(event.waited), text=text)
            queue["offered_at"] = event.waited
        prompts = tuple(a for a in said + hold
                        if isinstance(a, actions.Say | actions.Play | actions.Pause))
        self.out.append(actions.HoldOffer(node=name, turn=self.session.turn, key=offer.key,
                                          prompts=prompts))

    def queue_key(self, name: str, node: EnqueueNode, event: DigitsEntered) -> None:
        """A key pressed on hold: the call-back key takes the caller out of the queue to
        book it (keeping their place); any other key changes nothing."""
        offer = node.offer_callback
        if offer is None or not node.callback or event.digits[:1] != offer.key:
            self.log("ignored_input", name, digits=event.digits[:4])
            return
        self.session.queue["leaving"] = "callback"
        self.log("callback_accepted", name, key=offer.key)
        self.out.append(actions.Leave())

    def queue_spoken(self, name: str, node: EnqueueNode, event: SpeechHeard) -> None:
        """The caller said the offer's words on hold; the edge has already taken them out
        of the queue (a REST redirect), so they go straight to book the call back. Words
        heard before the offer was made, or no match, change nothing: hold goes on."""
        self.log_speech(name, event, choice=event.choice)
        offer, queue = node.offer_callback, self.session.queue
        if offer is None or not node.callback or event.choice != offer.key \
                or queue.get("offered_at") is None:
            self.out.append(actions.Enqueue(node=name, turn=self.session.turn,
                                            queue=node.queue,
                                            context=dict(queue.get("context") or {})))
            return  # back in line (Twilio keeps no place for a redirected caller)
        queue["leaving"] = "callback"
        self.log("callback_accepted", name, spoken=event.text)
        self.route(name, node.callback, "asked for a call back by voice")

    def callback_booked(self, name: str, node: CallbackNode, event: CallbackBooked) -> None:
        if not event.ok:
            self.log("callback_refused", name, error=event.error)
            self.route(name, node.fallback, f"no call back: {event.error}")
            return
        self.session.callback = {**self.session.callback, "when": event.when,
                                 "merged": event.merged}
        self.log("callback_booked", name, when=event.when, merged=event.merged)
        self.out.extend(self.prompts(name, node.say))
        self.session.outcome = "callback"
        if node.next:
            self.route(name, node.next, "call back booked")
        else:
            self.finish()

    def announce(self, name: str, announce: Announce, event: QueueWaiting) -> None:
        estimate = event.estimate
        queue_vars = {"position": event.position, "size": event.size,
                      "waited": round(event.waited),
                      "wait": estimate.phrase if estimate else "",
                      "minutes": round(estimate.seconds / 60) if estimate else None}
        try:
            text = render(announce.say, {**self.context(), "queue": queue_vars})
        except TemplateError as exc:
            raise FlowRuntimeError(self.flow.name, name, f"announce.say: {exc}",
                                   self.flow.line_of(name, "announce", "say")) from None
        if text.strip():
            self.say_text(text)
        self.session.queue.update(
            announced_at=event.waited, announced_position=event.position,
            announced_wait=estimate.seconds if estimate else None)
        self.log("queue_announce", name, position=event.position, waited=round(event.waited),
                 wait=round(estimate.seconds) if estimate else None,
                 p10=round(estimate.p10) if estimate else None,
                 p90=round(estimate.p90) if estimate else None, text=text)

    def agent_call_ended(self, name: str, node: AgentLineNode, event: TransferEnded) -> None:
        self.log("agent_call_ended", name, status=event.status, duration=event.duration)
        target = node.next if event.status in ANSWERED else node.fallback
        if target:
            self.route(name, target, f"agent call {event.status}")
        else:
            self.finish()

    def queue_left(self, name: str, node: EnqueueNode, event: QueueLeft) -> None:
        self.log("queue_left", name, result=event.result, waited=round(event.waited))
        if event.result == "bridged":  # the agent's call is over; the caller may still be on
            self.session.outcome = "transferred"
            if node.next:
                self.route(name, node.next, "agent call ended")
            else:
                self.finish()
        elif event.result == "hangup":
            self.session.outcome = "abandoned"
            self.finish()
        elif event.result == "redirected":
            return  # moved elsewhere through the REST API; this answer is not used
        else:  # leave (waited too long, a call back), queue-full, error, system-error
            reason = self.session.queue.get("leaving") or event.result
            target = node.callback if reason == "callback" and node.callback else node.fallback
            self.route(name, target, f"left the queue: {reason}")

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


def _announce_due(announce: Announce, queue: dict[str, Any], event: QueueWaiting) -> bool:
    """First at once; then every `every` seconds, and only if there is news worth saying."""
    last_at = queue.get("announced_at")
    if last_at is None:
        return True
    if event.waited - last_at < announce.every:
        return False
    if event.position != queue.get("announced_position"):
        return True
    last, now = queue.get("announced_wait"), event.estimate
    if now is None or last is None:
        return now is not None
    return abs(now.seconds - last) >= announce.min_change


def _offer_due(node: EnqueueNode, queue: dict[str, Any], event: QueueWaiting) -> bool:
    """Once offered, always listening; before, when waited long enough or the estimate is."""
    offer = node.offer_callback
    if offer is None:
        return False
    if queue.get("offered_at") is not None:
        return True
    if offer.after is None and offer.above is None:
        return True
    long_wait = offer.after is not None and event.waited >= offer.after
    long_estimate = offer.above is not None and event.estimate is not None \
        and event.estimate.seconds > offer.above
    return long_wait or long_estimate
