"""How often to try a callback again, and after how long, from the last call's outcome.

An answered call is done. A machine is done too unless the policy says to retry (a message
asking the caller to ring back may be all the business wants). Busy, no answer, a failed or
canceled dial are tried again until `attempts` calls were made, waiting `delays[n-1]` after
the n-th (the last delay repeats, so "300" alone means every five minutes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import CallbackError

Outcome = Literal["answered", "machine", "busy", "no-answer", "failed", "canceled"]
OUTCOMES: frozenset[str] = frozenset({"answered", "machine", "busy", "no-answer", "failed",
                                      "canceled"})
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # calls in all, the first included
    delays: tuple[int, ...] = (300, 900)  # seconds after the 1st, 2nd, ... failed call
    on_machine: Literal["retry", "stop"] = "stop"

    def __post_init__(self) -> None:
        attempts = self.attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) \
                or not 1 <= attempts <= MAX_ATTEMPTS:
            raise CallbackError(f"retry attempts {attempts!r}: must be 1..{MAX_ATTEMPTS}")
        delays = tuple(self.delays)
        object.__setattr__(self, "delays", delays)
        if any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in delays):
            raise CallbackError(f"retry delays {delays!r}: each must be a positive number "
                                "of seconds")
        if attempts > 1 and not delays:
            raise CallbackError(f"retry delays (): {attempts} attempts need at least one delay")
        if self.on_machine not in ("retry", "stop"):
            raise CallbackError(f'retry on_machine "{self.on_machine}": use "retry" or "stop"')

    @classmethod
    def from_settings(cls, attempts: int | str = 3, delays: str | Sequence[int] = (300, 900),
                      on_machine: str = "stop") -> RetryPolicy:
        """From config values: delays as "300,900" or a list; CallbackError names the bad one."""
        try:
            count = int(str(attempts).strip())
        except ValueError:
            raise CallbackError(f"retry attempts {attempts!r}: not a whole number") from None
        if isinstance(delays, str):
            parts = [p.strip() for p in delays.split(",") if p.strip()]
            if not all(p.isdigit() for p in parts):
                raise CallbackError(f'retry delays "{delays}": expected seconds such as '
                                    '"300,900"')
            delays = [int(p) for p in parts]
        return cls(count, tuple(delays), on_machine.strip().lower())  # type: ignore[arg-type]


def _outcome(outcome: str) -> str:
    word = outcome.strip().lower().replace("_", "-").replace(" ", "-")
    word = {"cancelled": "canceled", "noanswer": "no-answer"}.get(word, word)
    if word not in OUTCOMES:
        raise CallbackError(f'call outcome "{outcome}": expected one of '
                            + ", ".join(sorted(OUTCOMES)))
    return word


def next_delay(policy: RetryPolicy, outcome: str, attempts_made: int) -> int | None:
    """Seconds until the next attempt after `attempts_made` calls ended with `outcome`, or
    None when there is to be none."""
    word = _outcome(outcome)
    if word == "answered" or (word == "machine" and policy.on_machine == "stop"):
        return None
    if attempts_made >= policy.attempts:
        return None
    index = min(max(attempts_made, 1) - 1, len(policy.delays) - 1)
    return policy.delays[index]
