"""The flow engine: step(flow, session, event, now) -> (session, actions). No I/O, no clock."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from . import actions as act
from . import hours
from .answers import Answers
from .errors import FlowRuntimeError
from .events import (
    CallbackBooked,
    CallStarted,
    DigitsEntered,
    Event,
    LookupDone,
    NoInput,
    QueueLeft,
    QueueWaiting,
    Repeat,
    SpeechHeard,
    TransferEnded,
)
from .loader import Flow
from .nodes import (
    AgentLineNode,
    CallbackNode,
    CollectNode,
    EnqueueNode,
    HangupNode,
    HttpNode,
    MenuNode,
    PlayNode,
    SayNode,
    SetNode,
    SplitNode,
    SwitchNode,
    TransferNode,
)
from .schema import CallbackBranch
from .schema_base import Prompt
from .templates import TemplateError, evaluate, render, render_value

MAX_NODES_PER_TURN = 100
WITHHELD = {"anonymous", "restricted", "unknown", "blocked", "unavailable", "266696687",
            "private"}


def step(flow: Flow, session: Any, event: Event, now: dt.datetime) -> tuple[Any, list[act.Action]]:
    """Advance one call by one event. The input session is not modified; a new one is returned."""
    run = _Run(flow, session.copy(), now)
    run.handle(event)
    return run.session, run.out


class _Run(Answers):
    def __init__(self, flow: Flow, session: Any, now: dt.datetime):
        self.flow, self.session, self.now = flow, session, now
        self.out: list[act.Action] = []

    # -- events --------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        s = self.session
        if s.done:
            self.out.append(act.Hangup())
            return
        if isinstance(event, CallStarted):
            s.previous_calls = event.previous_calls or 0
            s.settings = dict(event.settings)
            self.log("call_started", None, flow=self.flow.name, version=self.flow.version,
                     previous_calls=event.previous_calls)
            if event.callback is not None:
                self.callback_answered(event)
                return
            self.run_from(self.flow.model.start)
            return
        node_name = s.node
        if node_name is None or node_name not in self.flow.model.nodes:
            raise FlowRuntimeError(self.flow.name, str(node_name), "no node is waiting for input")
        node = self.flow.node(node_name)
        if isinstance(event, Repeat):
            self.run_from(node_name, repeat=True)
        elif isinstance(event, DigitsEntered | NoInput) and isinstance(node, MenuNode):
            self.menu_answer(node_name, node, event)
        elif isinstance(event, SpeechHeard) and isinstance(node, MenuNode):
            self.menu_speech(node_name, node, event)
        elif isinstance(event, DigitsEntered | NoInput) and isinstance(node, CollectNode):
            self.collect_answer(node_name, node, event)
        elif isinstance(event, SpeechHeard) and isinstance(node, CollectNode):
            self.collect_speech(node_name, node, event)
        elif isinstance(event, LookupDone) and isinstance(node, HttpNode):
            self.lookup_answer(node_name, node, event)
        elif isinstance(event, TransferEnded) and isinstance(node, TransferNode):
            self.transfer_ended(node_name, node, event)
        elif isinstance(event, TransferEnded) and isinstance(node, AgentLineNode):
            self.agent_call_ended(node_name, node, event)
        elif isinstance(event, QueueWaiting) and isinstance(node, EnqueueNode):
            self.queue_waiting(node_name, node, event)
        elif isinstance(event, QueueLeft) and isinstance(node, EnqueueNode):
            self.queue_left(node_name, node, event)
        elif isinstance(event, DigitsEntered) and isinstance(node, EnqueueNode):
            self.queue_key(node_name, node, event)
        elif isinstance(event, SpeechHeard) and isinstance(node, EnqueueNode):
            self.queue_spoken(node_name, node, event)
        elif isinstance(event, CallbackBooked) and isinstance(node, CallbackNode):
            self.callback_booked(node_name, node, event)
        else:
            # Input that does not fit the waiting node (out of order): ask again, count nothing.
            self.log("ignored_input", node_name, event=type(event).__name__)
            self.run_from(node_name, repeat=True)

    # -- running nodes -------------------------------------------------------------------

    def retry_or_fallback(self, name: str, node: MenuNode | CollectNode,
                          reprompt: list[Prompt]) -> None:
        self.session.attempts += 1
        if self.session.attempts > node.retries:
            self.route(name, node.fallback, f"no valid answer after {node.retries + 1} tries")
            return
        self.run_from(name, repeat=True, before=self.prompts(name, reprompt))

    def route(self, src: str, dst: str, reason: str) -> None:
        self.log("route", src, to=dst, reason=reason)
        self.run_from(dst)

    def run_from(self, name: str, *, repeat: bool = False,
                 before: list[act.Action] | None = None) -> None:
        if not repeat:
            self.session.attempts = 0
        pending = list(before or [])
        for _ in range(MAX_NODES_PER_TURN):
            node = self.flow.node(name)
            handler: Callable[[str, Any, list[act.Action]], str | None] = getattr(
                self, f"node_{node.type}")  # type: ignore[attr-defined]
            nxt = handler(name, node, pending)
            if nxt is None:
                return
            if nxt != name:
                self.session.attempts = 0
            pending = []
            self.log("route", name, to=nxt, reason=node.type)  # type: ignore[attr-defined]
            name = nxt
        raise FlowRuntimeError(self.flow.name, name, f"more than {MAX_NODES_PER_TURN} nodes ran "
                                                     "without waiting for the caller")

    def node_say(self, name: str, node: SayNode, pending: list[act.Action]) -> str:
        text = self.text(name, node.text, "text")
        self.emit(pending)
        self.out.append(act.Say(text, node.voice or self.flow.model.voice,
                                node.language or self.flow.model.language))
        self.log("prompt", name, text=text)
        return node.next

    def node_play(self, name: str, node: PlayNode, pending: list[act.Action]) -> str:
        self.emit(pending)
        url = self.text(name, node.url, "url")
        self.out.append(act.Play(url, node.loop))
        self.log("prompt", name, play=url)
        return node.next

    def node_menu(self, name: str, node: MenuNode, pending: list[act.Action]) -> None:
        prompts = pending + self.prompts(name, node.prompt)
        synonyms = tuple((o.key, tuple(o.say)) for o in node.options if o.say)
        self.gather(name, prompts, timeout=node.timeout, num_digits=1, finish_on_key="",
                    choices=tuple(o.key for o in node.options), synonyms=synonyms,
                    speech=self.speech_mode(node) if synonyms else "off")

    def node_collect(self, name: str, node: CollectNode, pending: list[act.Action]) -> None:
        prompts = pending + self.prompts(name, node.prompt)
        fixed = node.max_digits if node.min_digits == node.max_digits else None
        mode = self.speech_mode(node)
        self.gather(name, prompts, timeout=node.timeout, num_digits=fixed,
                    finish_on_key=node.finish_on_key, spoken_digits=mode != "off", speech=mode)

    def speech_mode(self, node: MenuNode | CollectNode) -> str:
        return node.speech or self.flow.model.speech

    def node_switch(self, name: str, node: SwitchNode, pending: list[act.Action]) -> str:
        self.emit(pending)
        ctx = self.context()
        for i, case in enumerate(node.cases):
            try:
                matched = evaluate(case.when, ctx)
            except (TemplateError, KeyError) as exc:
                raise FlowRuntimeError(self.flow.name, name, f"condition {case.when!r}: {exc}",
                                       self.flow.line_of(name, "cases", i)) from None
            if matched:
                self.log("switch", name, matched=case.when)
                return case.goto
        self.log("switch", name, matched="default")
        return node.default

    def node_set(self, name: str, node: SetNode, pending: list[act.Action]) -> str:
        self.emit(pending)
        ctx = self.context()
        for var, value in node.vars.items():
            try:
                self.session.vars[var] = render_value(value, ctx)
            except TemplateError as exc:
                raise FlowRuntimeError(self.flow.name, name, f"vars.{var}: {exc}",
                                       self.flow.line_of(name, "vars", var)) from None
        return node.next

    def node_http(self, name: str, node: HttpNode, pending: list[act.Action]) -> None:
        self.emit(pending)
        ctx = self.context()
        try:
            request = act.HttpRequest(
                node=name, method=node.method, url=render(node.url, ctx),
                params={k: render(v, ctx) for k, v in node.params.items()},
                body=render_value(node.body, ctx) if node.body is not None else None,
                headers={k: render(v, ctx) for k, v in node.headers.items()},
                timeout=node.timeout)
        except TemplateError as exc:
            raise FlowRuntimeError(self.flow.name, name, str(exc), self.flow.line_of(name)) \
                from None
        self.session.node = name
        self.out.append(request)

    def node_split(self, name: str, node: SplitNode, pending: list[act.Action]) -> str:
        self.emit(pending)
        caller = self.session.caller
        who = caller if caller and caller.lower().lstrip("+") not in WITHHELD else \
            self.session.call_sid  # withheld callers are spread, not all sent one way
        digest = hashlib.sha256(f"{self.flow.name}:{name}:{who}".encode()).hexdigest()
        bucket = int(digest[:8], 16) % 100
        edge = 0
        chosen = node.branches[-1]
        for branch in node.branches:
            edge += branch.share
            if bucket < edge:
                chosen = branch
                break
        self.session.tags[name] = chosen.name
        self.log("split", name, branch=chosen.name, bucket=bucket)
        return chosen.goto

    def node_transfer(self, name: str, node: TransferNode, pending: list[act.Action]) -> None:
        target = self.text(name, node.to, "to")
        kind = "sip" if target.startswith("sip:") else \
            "client" if target.startswith("client:") else "number"
        context = self.agent_context(name, node.context)
        self.emit(pending + self.prompts(name, node.say))
        self.session.turn += 1
        self.session.node = name
        caller_id = self.text(name, node.caller_id, "caller_id") if node.caller_id else None
        self.out.append(act.Dial(node=name, turn=self.session.turn, target=target, kind=kind,
                                 timeout=node.timeout, caller_id=caller_id, context=context,
                                 whisper=node.whisper))
        self.log("transfer", name, target=target, context=sorted(context))

    def node_enqueue(self, name: str, node: EnqueueNode, pending: list[act.Action]) -> None:
        context = self.agent_context(name, node.context)
        self.emit(pending + self.prompts(name, node.say))
        self.session.turn += 1
        self.session.node = name
        self.session.queue = {"name": node.queue, "context": context}
        offer = node.offer_callback
        words = tuple(offer.words) if offer is not None and node.callback else ()
        self.out.append(act.Enqueue(node=name, turn=self.session.turn, queue=node.queue,
                                    context=context, words=words,
                                    speech=self.flow.model.speech if words else "off"))
        self.log("enqueue", name, queue=node.queue, context=sorted(context))

    def node_agent_line(self, name: str, node: AgentLineNode, pending: list[act.Action]) -> None:
        self.emit(pending + self.prompts(name, node.say))
        self.session.turn += 1
        self.session.node = name
        self.out.append(act.Dial(node=name, turn=self.session.turn, target=node.queue,
                                 kind="queue", timeout=node.timeout, whisper=False))
        self.log("agent_line", name, queue=node.queue)

    def node_callback(self, name: str, node: CallbackNode, pending: list[act.Action]) -> None:
        self.emit(pending)
        queue = node.queue or self.session.queue.get("name")
        if not queue:
            self.route(name, node.fallback, "no queue to be called back for")
            return
        self.session.node = name
        reason = "offer" if self.session.queue.get("leaving") == "callback" else "flow"
        self.out.append(act.BookCallback(
            node=name, queue=queue, number=self.text(name, node.number, "number"),
            reason=reason, context=dict(self.session.queue.get("context") or {})
            or self.agent_context(name, None)))

    def callback_answered(self, event: CallStarted) -> None:
        """We called them back: a person hears the flow's callback branch; a machine gets
        the message and the call ends."""
        s, branch = self.session, self.flow.model.callbacks
        s.callback = dict(event.callback or {})
        self.log("callback_call", None, callback=s.callback.get("id"), machine=event.machine)
        if event.machine:
            text = branch.voicemail if branch else CallbackBranch.model_fields[
                "voicemail"].default
            self.say_text(self.text(branch.start if branch else "-", text, "voicemail"))
            s.outcome = "closed"
            self.finish()
            return
        self.run_from(branch.start if branch else self.flow.model.start)

    def agent_context(self, name: str, declared: dict[str, str] | None) -> dict[str, str]:
        """What the caller already said, so the agent never asks again."""
        if declared is None:
            context = {k: str(v) for k, v in self.session.vars.items() if not k.startswith("_")}
            if self.session.choices:
                context["choices"] = " > ".join(self.session.choices)
        else:
            context = {k: self.text(name, v, "context") for k, v in declared.items()}
        return {k: v for k, v in context.items() if v}

    def node_hangup(self, name: str, node: HangupNode, pending: list[act.Action]) -> None:
        self.emit(pending + self.prompts(name, node.say))
        self.session.outcome = node.outcome or self.session.outcome or "self-served"
        self.log("hangup", name, outcome=self.session.outcome)
        self.finish()

    # -- helpers -------------------------------------------------------------------------

    def gather(self, name: str, prompts: list[act.Action], **kw: Any) -> None:
        self.session.turn += 1
        self.session.node = name
        self.out.append(act.Gather(node=name, turn=self.session.turn,
                                   prompts=tuple(prompts), **kw))  # type: ignore[arg-type]

    def finish(self) -> None:
        self.session.done = True
        self.session.node = None
        self.out.append(act.Hangup())

    def emit(self, actions: list[act.Action]) -> None:
        self.out.extend(actions)

    def say_text(self, text: str) -> None:
        self.out.append(act.Say(text, self.flow.model.voice, self.flow.model.language))

    def prompt_actions(self, name: str, prompts: list[Prompt]) -> list[act.Action]:
        """Prompts as actions without a timeline entry each (hold music plays every minute)."""
        return self.prompts(name, prompts, logged=False)

    def prompts(self, name: str, prompts: list[Prompt], logged: bool = True) -> list[act.Action]:
        out: list[act.Action] = []
        m = self.flow.model
        for p in prompts:
            if p.say is not None:
                text = self.text(name, p.say, "prompt")
                out.append(act.Say(text, p.voice or m.voice, p.language or m.language))
                if logged:
                    self.log("prompt", name, text=text)
            elif p.play is not None:
                out.append(act.Play(self.text(name, p.play, "prompt")))
                if logged:
                    self.log("prompt", name, play=p.play)
            elif p.pause is not None:
                out.append(act.Pause(p.pause))
        return out

    def text(self, name: str, template: str, field: str) -> str:
        if "{" not in template:  # plain text (most prompts): no context to build
            return template
        try:
            return render(template, self.context())
        except TemplateError as exc:
            raise FlowRuntimeError(self.flow.name, name, f"{field}: {exc}",
                                   self.flow.line_of(name, field)) from None

    def context(self) -> dict[str, Any]:
        s, model, now = self.session, self.flow.model, self.now
        local = hours.local_time(model, now)
        return {
            **s.vars,
            "vars": s.vars,
            "caller": {"number": s.caller, "known": s.known_caller,
                       "previous_calls": s.previous_calls,
                       "first_time": s.previous_calls == 0 and not s.known_caller},
            "call": {"sid": s.call_sid, "to": s.called, "choices": list(s.choices),
                     "tags": dict(s.tags)},
            "settings": s.settings,
            "callback": s.callback,
            "now": local,
            "weekday": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()],
            "in_hours": lambda hours_name: hours.in_hours(model, hours_name, now),
            "is_holiday": lambda: hours.is_holiday(model, now),
        }

    def log(self, kind: str, node: str | None, **data: Any) -> None:
        self.out.append(act.Log(kind, node, {k: v for k, v in data.items() if v is not None}))
