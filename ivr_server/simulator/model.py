"""What a simulated call produces and is told: outcomes of a transfer, transcript lines, errors."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

DIAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")


class SimulatorError(Exception):
    """The server did something Twilio would not accept, or the call cannot do what was asked."""


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class DialOutcome:
    """How a <Dial> ends for the simulated agent: answered (for `duration` s) or not."""

    status: str = "completed"
    duration: int = 60

    def __post_init__(self) -> None:
        if self.status not in DIAL_STATUSES:
            raise ValueError(f"a dial ends {', '.join(DIAL_STATUSES)}, not {self.status!r}")

    @classmethod
    def answered(cls, duration: int = 60) -> DialOutcome:
        return cls("completed", duration)

    @classmethod
    def busy(cls) -> DialOutcome:
        return cls("busy", 0)

    @classmethod
    def no_answer(cls) -> DialOutcome:
        return cls("no-answer", 0)

    @classmethod
    def failed(cls) -> DialOutcome:
        return cls("failed", 0)

    @classmethod
    def parse(cls, text: str) -> DialOutcome:
        """'answers', 'answered 90', 'busy', 'no-answer', 'no answer', 'failed', 'canceled'."""
        word, _, rest = str(text).strip().lower().partition(" ")
        if word in ("answer", "answers", "answered", "completed"):
            return cls.answered(int(rest) if rest.strip().isdigit() else 60)
        word = {"no": "no-answer", "noanswer": "no-answer"}.get(word, word)
        return cls(word, 0)


@dataclass
class Transfer:
    """A <Dial>: who was rung, what that agent was told, and how it ended."""

    target: str  # "+15005550006", "sip:support@pbx.example.com", "client:priority-desk"
    kind: str  # number, sip, client, queue, conference
    params: dict[str, str] = field(default_factory=dict)  # Client Parameters, SIP headers
    caller_id: str | None = None
    timeout: int = 30
    also_rung: tuple[str, ...] = ()
    whisper: list[str] = field(default_factory=list)  # what the agent heard before bridging
    status: str | None = None  # DialCallStatus once the dial ended
    duration: int | None = None
    declined: bool = False  # the agent hung up during the whisper

    def agent_context(self) -> list[str]:
        """Everything the agent got: the whisper, then each parameter as 'name: value'."""
        return [*self.whisper, *(f"{k}: {v}" for k, v in self.params.items())]

    def __str__(self) -> str:
        return self.target


@dataclass(frozen=True)
class Moment:
    """One line of the call's transcript."""

    who: str  # ivr, caller, agent, twilio
    kind: str  # say, play, pause, press, speak, silence, record, dial, dial-end, hangup, end
    text: str

    def __str__(self) -> str:
        return f"{self.who:>6} {self.kind:<8} {self.text}"


def norm(text: object) -> str:
    """Text as compared in expectations: case and runs of whitespace do not matter."""
    return " ".join(str(text).split()).casefold()
