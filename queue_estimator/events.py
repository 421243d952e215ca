"""Queue events and the CSV event-log format (`ts,event,call_id,value`).

The live server and the replay command both describe a queue as these rows, so one parser
and one state machine serve both. Errors name the file and line, as flow files do.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ARRIVE = "arrive"
ANSWER = "answer"  # leaves the queue to an agent
ABANDON = "abandon"  # leaves the queue without being answered
HANGUP = "hangup"  # the agent finishes the call
AGENTS = "agents"  # value = agents on duty from now on
KINDS = (ARRIVE, ANSWER, ABANDON, HANGUP, AGENTS)
HEADER = ("ts", "event", "call_id", "value")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a queue at `ts` seconds (any fixed epoch)."""

    ts: float
    event: str
    call_id: str = ""
    value: str = ""


class EventFileError(ValueError):
    """A malformed event log; str() is `file:line: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


def parse_row(fields: list[str]) -> Event:
    """Validate one data row; raises ValueError with a message (no location)."""
    if len(fields) != len(HEADER):
        raise ValueError(f"expected {len(HEADER)} columns (ts,event,call_id,value), "
                         f"got {len(fields)}")
    raw_ts, kind, call_id, value = (f.strip() for f in fields)
    try:
        ts = float(raw_ts)
    except ValueError:
        raise ValueError(f"ts {raw_ts!r} is not a number of seconds") from None
    if not math.isfinite(ts) or ts < 0:
        raise ValueError(f"ts {raw_ts!r} must be a finite number >= 0")
    if kind not in KINDS:
        raise ValueError(f"unknown event {kind!r} (expected one of {', '.join(KINDS)})")
    if kind == AGENTS:
        if not value.isdigit():
            raise ValueError(f"agents needs a whole number >= 0 in value, got {value!r}")
    elif not call_id:
        raise ValueError(f"{kind} needs a call_id")
    return Event(ts, kind, call_id, value)


def read_events(path: str | Path) -> Iterator[tuple[int, Event]]:
    """Yield (line, event) from a CSV log, checking the header and time order."""
    name = str(path)
    try:
        handle = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise EventFileError(name, 0, f"cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HEADER:
                raise EventFileError(name, 1, f"expected header {','.join(HEADER)}, "
                                     f"got {','.join(header or [])!r}")
            last_ts = -math.inf
            for fields in reader:
                line = reader.line_num
                if not fields or all(not f.strip() for f in fields):
                    continue
                try:
                    event = parse_row(fields)
                except ValueError as exc:
                    raise EventFileError(name, line, str(exc)) from None
                if event.ts < last_ts:
                    raise EventFileError(name, line, f"ts {event.ts:g} is earlier than the "
                                         f"row before ({last_ts:g}); rows must be in time order")
                last_ts = event.ts
                yield line, event
        except csv.Error as exc:
            raise EventFileError(name, reader.line_num, f"bad CSV: {exc}") from None
        except UnicodeDecodeError:
            raise EventFileError(name, reader.line_num + 1, "not UTF-8 text") from None
