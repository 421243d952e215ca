"""The flow file language: one pydantic model per node kind, keyed by `type`.

A new node kind (enqueue, callback offer, sms, survey) is one more model in
NODE_MODELS and one more handler in the engine; nothing else is reshaped.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import (
    Field,
    field_validator,
)

from .days import expand_days, range_ok
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
from .schema_base import NODE_NAME, FieldProblem, NodeBase, SpeechMode, Strict
from .templates import check_template

Node = Annotated[
    SayNode | PlayNode | MenuNode | CollectNode | SwitchNode | SetNode | HttpNode | SplitNode
    | TransferNode | HangupNode | EnqueueNode | AgentLineNode | CallbackNode,
    Field(discriminator="type"),
]
NODE_MODELS: dict[str, type[NodeBase]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in (SayNode, PlayNode, MenuNode, CollectNode, SwitchNode, SetNode, HttpNode, SplitNode,
              TransferNode, HangupNode, EnqueueNode, AgentLineNode, CallbackNode)
}
HUMAN_NODE_TYPES = {"transfer", "enqueue"}



class CallbackBranch(Strict):
    """What runs when we call someone back: `start` for a person; for an answering machine
    the `voicemail` message is left (after the beep) and the call ends."""

    start: str
    voicemail: str = ("Hello, this is {{ settings.company or 'us' }} returning your call. "
                      "We are sorry we missed you. Please call us back at your convenience.")

    @field_validator("voicemail")
    @classmethod
    def _voicemail_parses(cls, v: str) -> str:
        problem = check_template(v)
        if problem:
            raise ValueError(f"voicemail: {problem}")
        return v


class Holiday(Strict):
    date: dt.date
    name: str | None = None


class FlowModel(Strict):
    flow: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    description: str | None = None
    timezone: str = "UTC"
    language: str = "en-US"
    voice: str | None = None
    human: str | None = Field(default=None, description="number or SIP URI of last resort")
    # How callers may answer menus and collects by voice when a speech model is configured:
    # record (a short recording after the prompt), stream (live audio, barge-in), or off.
    speech: SpeechMode = "record"
    start: str
    hours: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    holidays: list[Holiday] = Field(default_factory=list)
    # Texts this flow's callers get, by name (wait_estimate, wait_update, survey_question,
    # ...), in the flow's language; they override [sms.templates] and the defaults.
    sms_templates: dict[str, str] = Field(default_factory=dict)
    # When this flow calls someone back (callbacks/), where the returned call starts.
    callbacks: CallbackBranch | None = None
    nodes: dict[str, Node]

    @field_validator("sms_templates")
    @classmethod
    def _sms_templates_parse(cls, v: dict[str, str]) -> dict[str, str]:
        for name, text in v.items():
            problem = check_template(text)
            if problem:
                raise FieldProblem(f"sms template {name!r}: {problem}", name)
        return v

    @field_validator("holidays", mode="before")
    @classmethod
    def _holiday_dates(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"date": h} if isinstance(h, str | dt.date) else h for h in v]
        return v

    @field_validator("hours", mode="before")
    @classmethod
    def _hours_lists(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {name: {day: ([r] if isinstance(r, str) else r) for day, r in days.items()}
                    if isinstance(days, dict) else days for name, days in v.items()}
        return v

    @field_validator("hours")
    @classmethod
    def _hours_valid(cls, v: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        for name, days in v.items():
            for spec, ranges in days.items():
                try:
                    expand_days(spec)
                except ValueError as exc:
                    raise FieldProblem(str(exc), name, spec) from None
                for r in ranges:
                    if r != "closed" and not range_ok(r):
                        raise FieldProblem(f"{r!r} is not HH:MM-HH:MM with the start before the "
                                           "end, within 00:00-24:00 (split a range that "
                                           "crosses midnight in two)", name, spec)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone_known(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not re.match(NODE_NAME, str(name)):
                raise ValueError(f"node name {name!r} must be letters, digits, _ or -")
        return v
