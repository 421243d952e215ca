"""Building blocks of the flow file language: prompts, node base, field-aware errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

NODE_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


class FieldProblem(ValueError):
    """A check across fields that knows which one (path below the model) to blame, so the
    loader reports the line to edit rather than the node's first line."""

    def __init__(self, message: str, *at: str | int):
        super().__init__(message)
        self.at = at


# YAML reads a bare `off` as false: take it as ops meant it.
SpeechMode = Annotated[Literal["record", "stream", "off"], BeforeValidator(
    lambda v: ("record" if v else "off") if isinstance(v, bool) else v)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prompt(Strict):
    """One thing the caller hears: text spoken by a voice, an audio file, or a pause."""

    say: str | None = None
    play: str | None = None
    pause: float | None = Field(default=None, gt=0, le=30)
    voice: str | None = None
    language: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Prompt:
        kinds = [k for k in ("say", "play", "pause") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a prompt needs exactly one of say, play or pause")
        return self


def _prompts(value: Any) -> Any:
    """Accept `"text"`, a prompt mapping, or a list of either."""
    if value is None:
        return []
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"say": v} if isinstance(v, str) else v for v in value]
    return value


Prompts = list[Prompt]


class NodeBase(Strict):
    description: str | None = None

    def targets(self) -> list[tuple[str, str]]:
        """(field, node name) for every node this one can lead to."""
        return []

    def waits_for_caller(self) -> bool:
        """True when running this node hands the call back to the caller (ends a turn)."""
        return False
