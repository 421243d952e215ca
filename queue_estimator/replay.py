"""Replay a recorded queue event log through a predictor.

    python -m queue_estimator.replay EVENTS.csv OUT.csv [--predictor NAME]

One output row per `arrive`, predicted from the rows before it only, through the same
QueueState the live server uses: the output for a prefix of a log is a prefix of the
output for the whole log, and the same log always gives the same output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence

from .events import ARRIVE, Event, EventFileError, read_events
from .predictors import DEFAULT, PREDICTORS
from .snapshot import Prediction
from .state import QueueState

OUT_HEADER = "call_id,predicted_wait_s,p10,p90"


def predict_arrivals(
    events: Iterable[Event], predictors: Sequence[str] = (DEFAULT,), state: QueueState | None = None
) -> Iterator[tuple[str, dict[str, Prediction]]]:
    """For each arrival: (call_id, {predictor: prediction}) made just before ingesting it."""
    state = state if state is not None else QueueState()
    chosen = [(name, PREDICTORS[name]) for name in predictors]
    for event in events:
        if event.event == ARRIVE:
            snap = state.snapshot(event.ts)
            yield event.call_id, {name: predict(snap) for name, predict in chosen}
        state.ingest_event(event)


def format_row(call_id: str, prediction: Prediction) -> str:
    return (f"{call_id},{prediction.predicted_wait_s:.1f},"
            f"{prediction.p10:.1f},{prediction.p90:.1f}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m queue_estimator.replay",
        description="Predict the wait of every arriving caller in a recorded queue event log.")
    parser.add_argument("events", help="CSV with header ts,event,call_id,value, in time order")
    parser.add_argument("out", help=f"CSV to write ({OUT_HEADER})")
    parser.add_argument("--predictor", default=DEFAULT, choices=list(PREDICTORS),
                        help=f"default: {DEFAULT}")
    args = parser.parse_args(argv)
    state = QueueState()
    partial = f"{args.out}.partial"
    try:
        # Write aside and rename: a malformed log leaves no half-written OUT behind.
        with open(partial, "w", encoding="utf-8", newline="") as out:
            out.write(OUT_HEADER + "\n")
            events = (event for _, event in read_events(args.events))
            for call_id, preds in predict_arrivals(events, (args.predictor,), state):
                out.write(format_row(call_id, preds[args.predictor]))
        os.replace(partial, args.out)
    except EventFileError as exc:
        print(exc, file=sys.stderr)
        _remove(partial)
        return 2
    except OSError as exc:
        print(f"{exc.filename or args.out}:0: cannot write: {exc.strerror}", file=sys.stderr)
        _remove(partial)
        return 2
    if state.ignored:
        print(f"note: {state.ignored} event(s) ignored (duplicates, or calls not in the "
              "state they claim)", file=sys.stderr)
    return 0


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


if __name__ == "__main__":
    sys.exit(main())
