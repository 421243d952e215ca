"""A call's state between webhooks: small, JSON-serialisable, owned by the engine."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass
class Session:
    call_sid: str
    flow: str
    version: str
    caller: str
    called: str
    started_at: str
    node: str | None = None  # the node waiting for the caller or for a lookup
    turn: int = 0
    attempts: int = 0  # retries used at the waiting node
    vars: dict[str, Any] = field(default_factory=dict)
    choices: list[str] = field(default_factory=list)  # what the caller picked, in order
    tags: dict[str, str] = field(default_factory=dict)  # split node -> branch taken
    known_caller: bool = False
    previous_calls: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    queue: dict[str, Any] = field(default_factory=dict)  # the queue being waited in, announced
    callback: dict[str, Any] = field(default_factory=dict)  # booked, or this call is one
    outcome: str | None = None
    done: bool = False

    def copy(self) -> Session:
        """A copy the engine may change; cheaper than deepcopy on every webhook."""
        return replace(self, vars=copy.deepcopy(self.vars), choices=list(self.choices),
                       tags=dict(self.tags), settings=dict(self.settings), queue=dict(self.queue),
                       callback=dict(self.callback))

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: json.dumps walks the nested values; asdict would copy them all.
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def new_session(*, call_sid: str, flow: str, version: str, caller: str, called: str,
                now: dt.datetime) -> Session:
    return Session(call_sid=call_sid, flow=flow, version=version, caller=caller, called=called,
                   started_at=now.isoformat())
