"""Helpers shared by the engine tests: load a flow, start a call, feed events, hear the prompts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from textwrap import dedent
from zoneinfo import ZoneInfo

from flows import actions as act
from flows.engine import step
from flows.events import (
    CallStarted,
    Event,
)
from flows.loader import Flow, load_flow_text
from flows.session import Session, new_session

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday, 11:00 in New York
DEMO = Path(__file__).parents[2] / "flows" / "examples" / "company.yaml"


def load(text: str) -> Flow:
    return load_flow_text(dedent(text), "t.yaml")


def start(flow: Flow, caller: str = "+15551230001", now: dt.datetime = NOW,
          **started: object) -> tuple[Session, list[act.Action]]:
    session = new_session(call_sid="CA1", flow=flow.name, version=flow.version, caller=caller,
                          called="+15550000000", now=now)
    return step(flow, session, CallStarted(**started), now)  # type: ignore[arg-type]


def play(flow: Flow, session: Session, *events: Event,
         now: dt.datetime = NOW) -> tuple[Session, list[act.Action]]:
    """Feed events one by one; return the last session and the last step's actions."""
    out: list[act.Action] = []
    for event in events:
        session, out = step(flow, session, event, now)
    return session, out


def heard(actions: list[act.Action]) -> list[str]:
    """Every sentence the caller hears, including prompts played while listening for keys."""
    texts: list[str] = []
    for a in actions:
        for p in (a.prompts if isinstance(a, act.Gather) else (a,)):
            if isinstance(p, act.Say):
                texts.append(p.text)
    return texts


def only(actions: list[act.Action], kind: type) -> object:
    found = [a for a in actions if isinstance(a, kind)]
    assert len(found) == 1, actions
    return found[0]


def ends_call(actions: list[act.Action]) -> bool:
    return isinstance([a for a in actions if not isinstance(a, act.Log)][-1], act.Hangup)


MENU_FLOW = """
flow: t
start: menu
nodes:
  menu:
    type: menu
    prompt: Press 1 for sales.
    options:
      - {key: 1, label: sales, goto: sales}
    no_input: I didn't hear you.
    no_match: That isn't a choice.
    retries: 2
    fallback: desk
  sales:
    type: transfer
    to: "+15551112222"
    say: Connecting you to sales.
  desk:
    type: transfer
    to: "sip:desk@pbx.example.com"
"""
