"""What can happen to a call, as the engine sees it: plain values, no transport details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CallStarted:
    """A call arrived (or a callback was answered); the flow runs from its start node."""

    previous_calls: int | None = 0  # None: not counted (the flow never asks)
    settings: dict[str, Any] = field(default_factory=dict)  # deployment values, e.g. crm_url
    callback: dict[str, Any] | None = None  # we called them back: the request, its context
    machine: bool = False  # ... and an answering machine picked up


@dataclass(frozen=True)
class DigitsEntered:
    """The caller pressed keys at a menu or collect (finish key already stripped)."""

    digits: str


@dataclass(frozen=True)
class SpeechHeard:
    """The caller spoke at a menu or collect; the edge recognised it and matched it against
    the menu's synonyms (`choice`: the option key) or read digit words (`digits`); None is
    a no-match. Recorded for supervisors, with how it was heard."""

    text: str
    confidence: float
    choice: str | None
    audio_seconds: float = 0.0
    decode_ms: float = 0.0
    error: str | None = None  # the audio could not be fetched or decoded: a no-match
    digits: str | None = None
    path: str = "record"  # "record" or "stream"


@dataclass(frozen=True)
class NoInput:
    """The caller said and pressed nothing before the node's timeout."""


@dataclass(frozen=True)
class Repeat:
    """Ask the waiting node again without counting a retry (a stale or replayed request)."""


@dataclass(frozen=True)
class LookupDone:
    """The answer to the HttpRequest the engine asked for; ok=False takes the failure branch."""

    ok: bool
    status: int | None = None
    data: Any = None
    error: str | None = None
    elapsed_ms: float | None = None


@dataclass(frozen=True)
class TransferEnded:
    """The Dial to a human ended: completed/answered, busy, no-answer, failed or canceled."""

    status: str
    duration: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WaitEstimate:
    """A predicted wait (seconds) with its p10..p90 interval and the words a caller hears."""

    seconds: float
    p10: float
    p90: float
    phrase: str


@dataclass(frozen=True)
class QueueWaiting:
    """Twilio asks what a queued caller hears next (the wait URL): their place and time so
    far, and the edge's estimate of the rest."""

    position: int
    waited: float
    size: int = 0
    estimate: WaitEstimate | None = None


@dataclass(frozen=True)
class QueueLeft:
    """The caller left the queue: bridged (an agent's call ended), leave, hangup, queue-full,
    redirected, error or system-error."""

    result: str
    waited: float = 0.0


@dataclass(frozen=True)
class CallbackBooked:
    """The edge booked the call back a callback node asked for (or could not, and why)."""

    ok: bool
    when: str = ""  # "in about 20 minutes", "tomorrow after 9 AM"
    merged: bool = False  # they already had one for this queue: it keeps its place
    error: str | None = None


Event = (CallStarted | DigitsEntered | SpeechHeard | NoInput | Repeat | LookupDone
         | TransferEnded | QueueWaiting | QueueLeft | CallbackBooked)
