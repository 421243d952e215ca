"""What an agent hears before taking a queued caller: who is calling and what they said.

`<Dial><Queue>` connects the agent to whoever waited longest, and Twilio runs the queue's
`url` on the caller's side, not the agent's, so the agent's line is told beforehand about
the caller it will most likely get (the head of the line, not promised to another agent).
If two agents race and Twilio connects the other caller, the connect webhook notes the
mismatch in both calls' timelines.
"""

from __future__ import annotations

from typing import Any

from flows import actions as act


def brief_agents(services: Any, agent_call: str, actions: list[act.Action]) -> list[act.Action]:
    """Put a Say with the next caller's context before each agent line's queue Dial."""
    out: list[act.Action] = []
    for action in actions:
        if isinstance(action, act.Dial) and action.kind == "queue":
            out.extend(act.Say(text) for text in _brief(services, agent_call, action.target))
        out.append(action)
    return out


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
