"""What the engine asks the edge to do. The web layer renders these as TwiML or performs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Say:
    text: str
    voice: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Play:
    url: str
    loop: int = 1


@dataclass(frozen=True)
class Pause:
    seconds: float


Prompt = Say | Play | Pause


@dataclass(frozen=True)
class Gather:
    """Play the prompts while listening for keys; the answer comes back for `node` at `turn`."""

    node: str
    turn: int
    prompts: tuple[Prompt, ...]
    timeout: int
    num_digits: int | None = None
    finish_on_key: str = ""
    choices: tuple[str, ...] = ()  # the keys a menu accepts, for speech and simulators
    # key -> the spoken synonyms that choose it (menus).
    synonyms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    spoken_digits: bool = False  # a collect that takes digits said aloud
    # How to listen for speech: "record" (a recording after the prompt, one request per
    # answer), "stream" (live audio while the prompt plays) or "off". The edge listens
    # only when it has a speech model and there is something to hear (synonyms or digits).
    speech: str = "off"


@dataclass(frozen=True)
class Dial:
    """Connect the caller to a human, telling them what the caller already said."""

    node: str
    turn: int
    target: str
    kind: str  # "number", "sip", "client", or "queue" (an agent takes the next caller)
    timeout: int
    caller_id: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    whisper: bool = True


@dataclass(frozen=True)
class Enqueue:
    """Put the caller in `queue`; waiting and leaving come back for `node` at `turn`."""

    node: str
    turn: int
    queue: str
    context: dict[str, str] = field(default_factory=dict)
    # Spoken words that accept a call back offer while on hold: the edge streams the
    # caller's audio through the wait when it can hear ("stream" speech), else keys only.
    words: tuple[str, ...] = ()
    speech: str = "off"


@dataclass(frozen=True)
class Leave:
    """Take a waiting caller out of the queue (Twilio then reports QueueResult=leave)."""


@dataclass(frozen=True)
class HoldOffer:
    """While on hold, listen for `key` (a call back instead of waiting) as the prompts play;
    the key comes back for `node` at `turn` as DigitsEntered."""

    node: str
    turn: int
    key: str
    prompts: tuple[Say | Play | Pause, ...]


@dataclass(frozen=True)
class BookCallback:
    """Book a call back; the edge answers with CallbackBooked before rendering anything."""

    node: str
    queue: str
    number: str
    reason: str
    context: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class HttpRequest:
    """A lookup the edge performs before answering; its result comes back as LookupDone."""

    node: str
    method: str
    url: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]
    timeout: float


@dataclass(frozen=True)
class Log:
    """One line of the call's timeline for supervisors (not rendered to the caller)."""

    kind: str
    node: str | None
    data: dict[str, Any] = field(default_factory=dict)


Action = (Say | Play | Pause | Gather | Dial | Enqueue | Leave | HoldOffer | BookCallback
          | Hangup | HttpRequest | Log)
