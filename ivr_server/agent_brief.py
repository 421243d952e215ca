"""What an agent learns about the caller they take: a spoken brief when it can be kept, and
the exact screen pop once Twilio has connected them.

`<Dial><Queue>` connects whichever agent line dequeues first to the head of the line, and
Twilio runs the queue's `url` on the caller's side, not the agent's: a line cannot be told
beforehand which caller it will get when another line may race it. So the brief ("Next
caller from ...") is spoken only when no other line can: at most one agent on duty and no
other line holding a reservation (QueueState.brief). Otherwise the line hears nothing extra
(no guess, no wait added before the Dial), and the agent's desktop shows who they got:
the connect webhook records the real pair (`GET /agents/connected`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flows import actions as act
from flows.session import Session

from .agent_lines import ScreenPop
from .voice_safety import SID


def brief_agents(services: Any, agent_call: str, actions: list[act.Action]) -> list[act.Action]:
    """Put a Say with the next caller's context before an agent line's queue Dial, when
    that caller is sure to be the one the line gets."""
    out: list[act.Action] = []
    for action in actions:
        if isinstance(action, act.Dial) and action.kind == "queue":
            out.extend(act.Say(text) for text in _brief(services, agent_call, action.target))
        out.append(action)
    return out


def pop_screen(services: Any, queue: str, caller_call: str, agent_call: str,
               now: dt.datetime, waited: int, session: Session | None) -> None:
    """Twilio connected `caller_call` (whose `session` this is) to `agent_call`: keep the
    pair for the agent's desktop."""
    if not (SID.match(caller_call) and SID.match(agent_call)):
        return  # not call SIDs: nothing a desktop could match to its line
    context = (session.queue.get("context") or {}) if session is not None else {}
    services.queues.connected(ScreenPop(
        queue=queue, agent_call=agent_call, caller_call=caller_call,
        caller=session.caller if session is not None else "", since=now.timestamp(),
        waited=waited, context={str(k): str(v) for k, v in context.items()}))


def _brief(services: Any, agent_call: str, queue: str) -> list[str]:
    caller = services.queues.brief(queue, agent_call, services.clock().timestamp())
    if caller is None:
        return []
    session = services.sessions.load(caller)
    context = (session.queue.get("context") or {}) if session is not None else {}
    number = session.caller if session is not None else ""
    parts = [f"Next caller{f' from {_spoken(number)}' if number else ''}."]
    parts += [f"{key.replace('_', ' ')}: {_spoken(value)}." for key, value in context.items()]
    return [" ".join(parts)]


def _spoken(value: str) -> str:
    """Digits one by one, so a number is read as a number."""
    digits = value.lstrip("+")
    return " ".join(digits) if digits.isdigit() else value
