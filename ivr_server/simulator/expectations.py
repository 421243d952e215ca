"""What a test or a script checks about a simulated call, with the transcript when it fails."""

from __future__ import annotations

from .model import Moment, norm


class Expectations:
    """Mixed into SimulatedCall: `heard` and `transcript` come from the call."""

    transcript: list[Moment]

    @property
    def heard(self) -> list[str]:  # pragma: no cover - defined by the call
        raise NotImplementedError

    def format_transcript(self, last: int | None = None) -> str:
        lines = [str(m) for m in self.transcript]
        return "\n".join(lines[-last:] if last else lines) or "(nothing happened)"

    def expect_heard(self, text: str) -> None:
        if not any(norm(text) in norm(h) for h in self.heard):
            raise AssertionError(f"expected to hear {text!r}; the call so far:\n"
                                 + self.format_transcript())

    def expect_not_heard(self, text: str) -> None:
        if any(norm(text) in norm(h) for h in self.heard):
            raise AssertionError(f"expected not to hear {text!r}; the call so far:\n"
                                 + self.format_transcript())
