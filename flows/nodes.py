"""The node kinds of the flow file language, one pydantic model each, keyed by `type`."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from .schema_base import (
    FieldProblem,
    NodeBase,
    Prompt,
    Prompts,
    SpeechMode,
    Strict,
    _prompts,
)


class SayNode(NodeBase):
    type: Literal["say"]
    text: str
    voice: str | None = None
    language: str | None = None
    next: str

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class PlayNode(NodeBase):
    type: Literal["play"]
    url: str
    loop: int = Field(default=1, ge=1, le=10)
    next: str

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class MenuOption(Strict):
    key: str = Field(pattern=r"^[0-9*#]$")
    label: str | None = None
    say: list[str] = Field(default_factory=list, description="spoken synonyms for this choice")
    goto: str

    @field_validator("key", mode="before")
    @classmethod
    def _key_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


class MenuNode(NodeBase):
    type: Literal["menu"]
    prompt: Annotated[Prompts, Field(min_length=1)]
    options: Annotated[list[MenuOption], Field(min_length=1)]
    timeout: int = Field(default=5, ge=1, le=60)
    no_input: Prompts = Field(
        default_factory=lambda: [Prompt(say="Sorry, I didn't hear a choice.")])
    no_match: Prompts = Field(
        default_factory=lambda: [Prompt(say="Sorry, that isn't one of the choices.")])
    retries: int = Field(default=2, ge=0, le=5)
    fallback: str
    save_as: str | None = None
    allow_no_human: bool = False
    speech: SpeechMode | None = None  # how callers may answer by voice; default: the flow's

    @field_validator("prompt", "no_input", "no_match", mode="before")
    @classmethod
    def _as_prompts(cls, v: Any) -> Any:
        return _prompts(v)

    @model_validator(mode="after")
    def _distinct_keys(self) -> MenuNode:
        seen: set[str] = set()
        for i, option in enumerate(self.options):
            if option.key in seen:
                raise FieldProblem(f"key {option.key!r} is used by more than one option",
                                   "options", i, "key")
            seen.add(option.key)
        return self

    def targets(self) -> list[tuple[str, str]]:
        return [(f"options[{o.key}]", o.goto) for o in self.options] + [("fallback", self.fallback)]

    def waits_for_caller(self) -> bool:
        return True


class CollectNode(NodeBase):
    type: Literal["collect"]
    prompt: Annotated[Prompts, Field(min_length=1)]
    save_as: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    min_digits: int = Field(default=1, ge=1, le=40)
    max_digits: int = Field(default=20, ge=1, le=40)
    finish_on_key: str = Field(default="#", pattern=r"^[#*]?$")
    timeout: int = Field(default=5, ge=1, le=60)
    validate_as: Literal["luhn"] | None = Field(default=None, alias="validate")
    pattern: str | None = None
    invalid: Prompts = Field(
        default_factory=lambda: [Prompt(say="Sorry, that number doesn't look right.")])
    no_input: Prompts = Field(
        default_factory=lambda: [Prompt(say="Sorry, I didn't hear anything.")])
    retries: int = Field(default=2, ge=0, le=5)
    next: str
    fallback: str
    speech: SpeechMode | None = None  # spoken digits ("four one two"); default: the flow's

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("prompt", "invalid", "no_input", mode="before")
    @classmethod
    def _as_prompts(cls, v: Any) -> Any:
        return _prompts(v)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
        return v

    @model_validator(mode="after")
    def _lengths(self) -> CollectNode:
        if self.min_digits > self.max_digits:
            raise FieldProblem("min_digits is larger than max_digits", "min_digits")
        return self

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("fallback", self.fallback)]

    def waits_for_caller(self) -> bool:
        return True


class Case(Strict):
    when: str
    goto: str


class SwitchNode(NodeBase):
    type: Literal["switch"]
    cases: Annotated[list[Case], Field(min_length=1)]
    default: str

    def targets(self) -> list[tuple[str, str]]:
        return [(f"cases[{i}]", c.goto) for i, c in enumerate(self.cases)] + [
            ("default", self.default)]


class SetNode(NodeBase):
    type: Literal["set"]
    vars: dict[str, Any]
    next: str

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class HttpNode(NodeBase):
    type: Literal["http"]
    method: Literal["GET", "POST"] = "GET"
    url: str
    params: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=3.0, gt=0, le=10)
    save: dict[str, str] = Field(default_factory=dict,
                                 description="variable name -> dotted field in the JSON answer")
    next: str
    on_failure: str

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_failure", self.on_failure)]


class Branch(Strict):
    name: str
    share: int = Field(ge=0, le=100)
    goto: str


class SplitNode(NodeBase):
    type: Literal["split"]
    branches: Annotated[list[Branch], Field(min_length=2)]

    @model_validator(mode="after")
    def _shares(self) -> SplitNode:
        total = sum(b.share for b in self.branches)
        if total != 100:
            raise FieldProblem(f"branch shares add up to {total}, not 100", "branches")
        return self

    def targets(self) -> list[tuple[str, str]]:
        return [(f"branches[{b.name}]", b.goto) for b in self.branches]


class TransferNode(NodeBase):
    type: Literal["transfer"]
    to: str = Field(description="an E.164 number, sip:user@host or client:identity (a template)")
    say: Prompts = Field(default_factory=list)
    caller_id: str | None = None
    timeout: int = Field(default=30, ge=5, le=600)
    context: dict[str, str] | None = Field(
        default=None, description="what the agent is told; default: every call variable")
    whisper: bool = True
    on_failure: str | None = None

    @field_validator("say", mode="before")
    @classmethod
    def _as_prompts(cls, v: Any) -> Any:
        return _prompts(v)

    def targets(self) -> list[tuple[str, str]]:
        return [("on_failure", self.on_failure)] if self.on_failure else []

    def waits_for_caller(self) -> bool:
        return True


class HangupNode(NodeBase):
    type: Literal["hangup"]
    say: Prompts = Field(default_factory=list)
    # Default: "transferred" if the caller reached an agent earlier, else "self-served".
    outcome: Literal["self-served", "closed", "failed", "abandoned"] | None = None

    @field_validator("say", mode="before")
    @classmethod
    def _as_prompts(cls, v: Any) -> Any:
        return _prompts(v)

    def waits_for_caller(self) -> bool:
        return True


HOLD_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


class Announce(Strict):
    """What a waiting caller is told about their place and wait, and how often."""

    say: str = ("You are number {{ queue.position }} in line."
                "{% if queue.wait %} Your wait is {{ queue.wait }}.{% endif %}")
    every: int = Field(default=60, ge=15, le=900, description="seconds between announcements")
    min_change: int = Field(
        default=30, ge=0, le=900,
        description="repeat only when the estimate moved this many seconds or the place changed")


class CallbackOffer(Strict):
    """Offered on hold: press a key to be called back and keep your place in line."""

    after: int | None = Field(default=None, ge=0, le=7200,
                              description="offer once the caller has waited this long")
    above: int | None = Field(default=None, ge=0, le=7200,
                              description="or once their estimate is longer than this")
    key: str = Field(default="1", pattern=r"^[0-9*#]$")
    say: str = ("Press {{ key }} to be called back when it is your turn, without losing your "
                "place in line.")
    words: list[str] = Field(
        default_factory=list,
        description="spoken answers that accept, e.g. call me back (needs speech: stream)")
    every: int = Field(default=120, ge=30, le=900,
                       description="seconds between spoken offers (the key works all along)")


class EnqueueNode(NodeBase):
    """Wait for an agent in a named queue, told where you stand and how long it will take."""

    type: Literal["enqueue"]
    queue: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    say: Prompts = Field(default_factory=list)
    announce: Announce | None = Field(default_factory=Announce)
    hold: Prompts = Field(default_factory=lambda: [Prompt(play=HOLD_MUSIC)])
    max_wait: int | None = Field(default=None, ge=30, le=7200,
                                 description="seconds after which the caller leaves for fallback")
    context: dict[str, str] | None = Field(
        default=None, description="what the agent is told; default: every call variable")
    next: str | None = Field(default=None, description="after the agent's call; default: hang up")
    fallback: str = Field(description="queue full, error, or waited max_wait")
    callback: str | None = Field(
        default=None, description="where a caller who asked for a call back goes (else fallback)")
    offer_callback: CallbackOffer | None = None
    abandon_callback: int | None = Field(
        default=None, ge=0, le=7200,
        description="a caller who hangs up after waiting this long is called back")

    @field_validator("say", "hold", mode="before")
    @classmethod
    def _as_prompts(cls, v: Any) -> Any:
        return _prompts(v)

    def targets(self) -> list[tuple[str, str]]:
        return [(f, t) for f, t in (("next", self.next), ("fallback", self.fallback),
                                    ("callback", self.callback)) if t]

    def waits_for_caller(self) -> bool:
        return True


class AgentLineNode(NodeBase):
    """An agent's line: connect the agent to the caller who has waited longest in `queue`."""

    type: Literal["agent_line"]
    queue: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    say: Prompts = Field(default_factory=list)
    timeout: int = Field(default=60, ge=5, le=600,
                         description="seconds to wait for a caller when nobody is waiting")
    next: str | None = Field(default=None, description="after each call, e.g. take the next one")
    fallback: str | None = Field(default=None, description="nobody called within the timeout")

    @field_validator("say", mode="before")
    @classmethod
    def _as_prompts(cls, v: Any) -> Any:
        return _prompts(v)

    def targets(self) -> list[tuple[str, str]]:
        return [(f, t) for f, t in (("next", self.next), ("fallback", self.fallback)) if t]

    def waits_for_caller(self) -> bool:
        return True


class CallbackNode(NodeBase):
    """Book a call back (to `number`, by default the caller's) for `queue`; `say` can tell
    them when ({{ callback.when }}). A number that cannot be called goes to fallback."""

    type: Literal["callback"]
    queue: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
                              description="default: the queue the caller just left")
    number: str = "{{ caller.number }}"
    say: Prompts = Field(default_factory=list)
    next: str | None = Field(default=None, description="after booking; default: hang up")
    fallback: str = Field(description="the number cannot be called back, or no queue")

    @field_validator("say", mode="before")
    @classmethod
    def _as_prompts(cls, v: Any) -> Any:
        return _prompts(v)

    def targets(self) -> list[tuple[str, str]]:
        return [(f, t) for f, t in (("next", self.next), ("fallback", self.fallback)) if t]

    def waits_for_caller(self) -> bool:
        return True
