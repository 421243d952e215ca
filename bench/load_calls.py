"""Who calls, and what they do: the load bench's callers, agents and called-back callees.

Each caller walks bench/flows/load.yaml over HTTP, as one of four personas: billing (a
menu key, an 8-digit account number, a transfer that is answered), agent (holds until an
agent takes them), abandon (hangs up after a short, random patience) and callback (presses
1 at the offer, confirms the number, is booked). What really happened is the call's
outcome (an impatient caller may still be taken first). Agents call the agent line
(bench/flows/load_agents.yaml), take the head of the line after a reaction time, talk, and
press 1 for the next caller. When the RQ worker places a callback, Twilio's Calls API
stand-in hands it to `answer_placed`, and the callee picks up, hears the flow's callback
branch and waits in line for an agent again.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import phonenumbers

from bench.calls import ACCOUNT_NUMBER
from ivr_server.simulator import DialOutcome, SimulatedCall, answer_outbound
from ivr_server.simulator import twiml_reader as tw
from ivr_server.simulator.calls_api import CallsApi

from .load_client import LoadCall, LoadTransport, LockedQueues, Scheduler, Step, now, run_story

QUEUE = "load-desk"
COMPANY_NUMBER = "+15005550006"  # the default flow (load.yaml)
AGENT_LINE = "+15005550010"  # [flows.numbers] -> load_agents.yaml
PERSONAS = ("billing", "agent", "abandon", "callback")
DEFAULT_MIX = "billing=30,agent=35,abandon=15,callback=20"
LINE_CALLERS = 20  # an agent hangs up and dials in again after this many callers
# Webhooks one caller of each persona brings (with its agent's and its callee's), measured
# with this flow (`--mix NAME=1` runs; a callback's since its status webhooks went from 4
# to 2: the default mix's 3-minute runs brought 8.46 per arrival); arrivals per second =
# rate / the mix's mean. The report shows the rate really reached.
WEBHOOKS_PER_CALL = {"billing": 6.0, "agent": 8.6, "abandon": 7.0, "callback": 13.0}


@dataclass(frozen=True)
class Timing:
    """Simulated seconds (a prompt plays in its words / 2.5 s, a key in 0.5 s)."""

    patience: tuple[float, float] = (1.0, 4.0)  # abandon: hangs up after holding this long
    reaction: tuple[float, float] = (1.5, 3.0)  # callback: presses 1 this long after joining
    answer: tuple[float, float] = (3.0, 6.0)  # an idle agent takes a waiting caller after
    talk: tuple[float, float] = (3.0, 8.0)  # an agent's call with a caller
    billing: tuple[float, float] = (5.0, 15.0)  # the billing desk's call
    ring: tuple[float, float] = (1.0, 3.0)  # a callback rings before the callee answers
    agent_poll: float = 0.5  # real seconds between an idle agent's looks at the line


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in PERSONAS:
            raise ValueError(f"--mix: {name!r} is not one of {', '.join(PERSONAS)}")
        mix[name] = float(weight)
    if sum(mix.values()) <= 0:
        raise ValueError("--mix: the weights add up to nothing")
    return mix


class Numbers:
    """Distinct valid caller numbers: New York ones (texts go to them) or London landlines
    (never texted: a fixed line), so the share of callers who get texts is chosen."""

    def __init__(self, rng: random.Random):
        self.rng, self.seen, self.lock = rng, set(), threading.Lock()

    def next(self, textable: bool) -> str:
        with self.lock:
            while True:
                r = self.rng
                number = (f"+1212{r.randrange(200, 1000)}{r.randrange(10000):04d}" if textable
                          else f"+44207{r.randrange(10**7):07d}")
                if number not in self.seen and phonenumbers.is_valid_number(
                        phonenumbers.parse(number)):
                    self.seen.add(number)
                    return number


@dataclass
class Ctx:
    """What every story shares; counters are read by the runner and the report."""

    transport: LoadTransport
    token: str
    queues: LockedQueues
    scheduler: Scheduler
    rng: random.Random
    timing: Timing
    scale: float
    textable: float  # share of callers whose number takes texts
    numbers: Numbers = field(init=False)
    outcomes: Counter[str] = field(default_factory=Counter)
    by_persona: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    failed: int = 0
    active: dict[int, LoadCall] = field(default_factory=dict)  # callers, callees on the line
    arrived: Counter[str] = field(default_factory=Counter)
    callees: int = 0
    served: int = 0  # callers an agent took and hung up on
    agent_calls: int = 0  # calls agents made to the agent line
    agents: list[LoadCall] = field(default_factory=list)
    agents_stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.numbers = Numbers(self.rng)

    def between(self, pair: tuple[float, float]) -> float:
        return self.rng.uniform(*pair)

    def start(self, call: LoadCall, story: Step, due: float | None = None) -> None:
        call.story = story
        with self.lock:
            self.active[id(call)] = call
        run_story(self.scheduler, call, self.ended, due)

    def ended(self, call: LoadCall) -> None:
        sim = call.sim
        if call.error:
            outcome = "failed"
        elif sim is not None and not sim.ended and call.persona != "agent line":
            outcome = "failed"
            call.error = f"story ended with the call still {sim.status} ({sim.waiting_for})"
        else:
            outcome = call.outcome or _outcome(sim)
        with self.lock:
            self.active.pop(id(call), None)
            self.outcomes[outcome] += 1
            self.by_persona[(call.persona, outcome)] += 1
            if call.error:
                self.failed += 1
                if len(self.failures) < 20:
                    tail = sim.format_transcript(8) if sim is not None else ""
                    self.failures.append(f"{call.persona}: {call.error}\n{tail}")
        if sim is not None:
            self.queues.forget(sim)
        call.sim = None  # its transcript is not needed any more

    def agent_failed(self, call: LoadCall, exc: Exception) -> None:
        sim = call.sim
        with self.lock:
            self.failed += 1
            self.outcomes["agent failed"] += 1
            if len(self.failures) < 20:
                tail = sim.format_transcript(8) if sim is not None else ""
                self.failures.append(f"agent: {type(exc).__name__}: {exc}"[:300] + f"\n{tail}")

    def describe_active(self, limit: int = 5) -> list[str]:
        """The calls still on the line, as far as each got (why a drain did not finish)."""
        with self.lock:
            calls = list(self.active.values())
        out = []
        for call in calls[:limit]:
            sim = call.sim
            if sim is None:
                out.append(f"{call.persona}: not started")
                continue
            line = self.queues.waiting(QUEUE, sim)
            out.append(f"{call.persona}: {sim.status}, waiting for {sim.waiting_for}, "
                       f"{'in line' if line else 'not in line'}\n{sim.format_transcript(6)}")
        with self.queues.lock:
            line = list(self.queues.members.get(QUEUE, []))
            owners = [self.queues.owner.get(id(m)) for m in line]
        out.append(f"line: {len(line)} waiting, agents going for {self.queues.reserved}: "
                   + "; ".join(f"{m.call_sid} {m.status}, {o.persona if o else 'no owner'}"
                               for m, o in zip(line, owners, strict=True)))
        for agent in self.agents:
            sim = agent.sim
            if sim is not None and sim.bridged_caller is not None:
                out.append(f"agent {sim.call_sid} with {sim.bridged_caller.call_sid}, "
                           f"waiting for {sim.waiting_for}\n{sim.format_transcript(4)}")
        return out

    def still_active(self) -> int:
        with self.lock:
            return len(self.active)


def _outcome(sim: SimulatedCall | None) -> str:
    if sim is None:
        return "failed"
    kinds = {(m.who, m.kind) for m in sim.transcript}
    if ("twilio", "bridged") in kinds:
        return "agent"
    heard = " ".join(sim.heard)
    if "call you back" in heard:
        return "callback booked"
    if ("caller", "hangup") in kinds:
        return "abandoned"
    if any(t.status == "completed" for t in sim.transfers):
        return "billing"
    return "other: " + (sim.heard[-1][:40] if sim.heard else sim.status)


def hold(ctx: Ctx, call: LoadCall, until: float | None,
         delay: float) -> Generator[float, None, bool]:
    """On hold, playing the wait URL's TwiML in real time (what was heard last plays for
    `delay` real seconds first), until the call ends (an agent took it and hung up), or the
    simulated time `until` comes while still waiting: then the generator returns True and
    the caller acts (in the middle of a prompt, as callers do)."""
    sim = call.sim
    assert sim is not None
    while True:
        if delay > 0:
            if until is not None:
                delay = min(delay, max(0.0, until - call.sim_now()) * call.scale)
            yield max(delay, 0.02)
        if sim.ended:
            return False
        if not ctx.queues.waiting(QUEUE, sim):
            delay = 0.5  # with an agent: the agent's steps end the call
            continue
        if until is not None and call.sim_now() >= until:
            return True
        delay = call.act(lambda: sim.wait(0.001))  # one wait-URL fetch or one verb played


def caller_story(ctx: Ctx, call: LoadCall) -> Step:
    sim = call.sim
    assert sim is not None
    yield call.act(sim.dial)
    if call.persona == "billing":
        yield call.act(lambda: sim.press("1"))
        yield call.act(lambda: sim.press(ACCOUNT_NUMBER))
        talk = ctx.between(ctx.timing.billing)
        yield talk * call.scale
        call.act(lambda: sim.answer_dial(DialOutcome.answered(int(talk))))
        return
    delay = call.act(lambda: sim.press("0"))  # into the line; the wait URL answers at once
    joined = call.e_mark
    if call.persona == "agent":
        yield from hold(ctx, call, None, delay)
        return
    if call.persona == "abandon":
        if (yield from hold(ctx, call, joined + ctx.between(ctx.timing.patience), delay)):
            call.act(sim.hangup)
            call.outcome = "abandoned"
        return
    until = joined + ctx.between(ctx.timing.reaction)
    while (yield from hold(ctx, call, until, delay)):
        if sim.hold.gather is None and not any(isinstance(v, tw.Gather)
                                               for v in sim.wait_verbs):  # not offered yet
            until, delay = call.sim_now() + 2, 0.0
            continue
        yield call.act(lambda: sim.press("1"))  # at the offer: out of the line
        call.act(lambda: sim.press("1"))  # "to be called back on this number, press 1"
        return


def callee_story(ctx: Ctx, call: LoadCall, form: dict[str, list[str]]) -> Step:
    """The phone of a caller we call back: it rings, they pick up, the flow's callback branch
    puts them in line, an agent takes them."""

    def pick_up() -> None:
        call.sim = answer_outbound(ctx.transport, ctx.token, form, answered_by="human",
                                   queues=ctx.queues)

    yield from hold(ctx, call, None, call.act(pick_up))
    call.outcome = "callback answered" if _outcome(call.sim) == "agent" else ""


def agent_story(ctx: Ctx, call: LoadCall, number: str) -> Step:
    """An agent on duty: when someone is waiting (and no other agent is going for them),
    after a reaction time, take them through the agent line, talk, and go again; every
    LINE_CALLERS callers, hang up and dial in afresh (a break, and the simulator's limit
    of requests in one call)."""
    q = ctx.queues
    taken = 0
    while not ctx.agents_stop.is_set():
        if not q.reserve(QUEUE):
            yield ctx.timing.agent_poll
            continue
        try:
            if (yield from _take_next(ctx, call, number)):
                taken += 1
                if taken % LINE_CALLERS == 0 and call.sim is not None and not call.sim.ended:
                    call.act(call.sim.hangup)
        except Exception as exc:  # noqa: BLE001 - counted; the agent carries on, on a new line
            ctx.agent_failed(call, exc)
            call.sim = None
    if call.sim is not None and not call.sim.ended:
        call.act(call.sim.hangup)
    call.outcome = "agent line"


def _take_next(ctx: Ctx, call: LoadCall, number: str) -> Generator[float, None, bool]:
    """One caller: react, dial the agent line (or press 1 on it), talk, hang up on them.
    Returns whether there was anyone to take."""
    q = ctx.queues
    try:
        yield ctx.between(ctx.timing.answer) * call.scale
        sim = call.sim
        try:
            if sim is None or sim.ended:
                sim = SimulatedCall(ctx.transport, ctx.token, from_=number, to=AGENT_LINE,
                                    queues=q)
                call.sim, call.t_mark, call.e_mark = sim, now(), 0.0
                with ctx.lock:
                    ctx.agent_calls += 1
                call.act(sim.dial)
            else:
                call.act(lambda: sim.press("1"))
        finally:
            taken = q.release_taken()
    finally:
        q.unreserve(QUEUE)
    if sim.bridged_caller is None or taken is None:
        if sim.waiting_for == "dial":  # nobody was left: the line says so and hangs up
            call.act(sim.answer_dial)
        return False
    talk = ctx.between(ctx.timing.talk)
    yield talk * call.scale
    with taken.lock:
        taken.sync()
        call.act(lambda: sim.answer_dial(DialOutcome.answered(max(1, int(talk)))))
    with ctx.lock:
        ctx.served += 1
    return True


def new_caller(ctx: Ctx, persona: str) -> LoadCall:
    call = LoadCall(persona, ctx.scale)
    number = ctx.numbers.next(ctx.rng.random() < ctx.textable)
    call.sim = SimulatedCall(ctx.transport, ctx.token, from_=number, to=COMPANY_NUMBER,
                             queues=ctx.queues)
    return call


def arrivals(ctx: Ctx, rate: float, mix: dict[str, float], until: float) -> None:
    """Callers arrive as a Poisson process of `rate` a second until `until` (open loop:
    each arrival is due when it is due, whatever the server did with the last)."""
    names, weights = list(mix), list(mix.values())

    def arrive(due: float) -> None:
        persona = ctx.rng.choices(names, weights)[0]
        with ctx.lock:
            ctx.arrived[persona] += 1
        call = new_caller(ctx, persona)
        ctx.start(call, caller_story(ctx, call), due)
        following = due + ctx.rng.expovariate(rate)
        if following < until:
            ctx.scheduler.at(following, arrive)

    ctx.scheduler.at(now(), arrive)


def start_agents(ctx: Ctx, count: int) -> list[str]:
    """`count` agents; returns their numbers (London landlines: never surveyed by text)."""
    numbers = []
    for _ in range(count):
        number = ctx.numbers.next(False)
        call = LoadCall("agent line", ctx.scale)
        call.story = agent_story(ctx, call, number)
        ctx.agents.append(call)
        run_story(ctx.scheduler, call, ctx.ended)
        numbers.append(number)
    return numbers


def mean_webhooks(mix: dict[str, float]) -> float:
    total = sum(mix.values())
    return sum(WEBHOOKS_PER_CALL[p] * w for p, w in mix.items()) / total


class PlacingCallsApi(CallsApi):
    """Twilio's memory of placed calls (simulator/calls_api.py), which also hands each call
    the worker placed to a simulated callee, who answers after it rang a while."""

    def __init__(self, upstream: str, on_placed: Callable[[dict[str, list[str]]], None]):
        super().__init__(upstream)
        self.on_placed = on_placed

    def create(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, Any]:
        status, reply, kind = super().create(path, body, headers)
        if status == 201:
            self.on_placed(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        return status, reply, kind


def answer_placed(ctx: Ctx) -> Callable[[dict[str, list[str]]], None]:
    def placed(form: dict[str, list[str]]) -> None:
        call = LoadCall("callee", ctx.scale)
        with ctx.lock:
            ctx.callees += 1
        ctx.start(call, callee_story(ctx, call, form),
                  now() + ctx.between(ctx.timing.ring) * ctx.scale)

    return placed
