"""Queue wait estimates: pure maths over a snapshot of one queue (no I/O, no clock).

    state = QueueState.from_events(recent_events)      # or QueueState.from_dict(saved)
    state.ingest(ts, "arrive", call_sid)                 # keep feeding events as they come
    prediction = predict(state.snapshot(now))            # default predictor: "adaptive"
    state, saved = resume(saved, events, first_index)    # per request: catch up a saved state
    phrase(prediction)                                   # "about 5 minutes"

`python -m queue_estimator.replay EVENTS.csv OUT.csv` runs a recorded log through the same
code. Predictors: see PREDICTORS (adaptive, ql, qlm, hol, les, asterisk).
"""

from .events import KINDS, Event, EventFileError, read_events
from .phrasing import phrase
from .predictors import DEFAULT, PREDICTORS, predict
from .resume import resume
from .snapshot import Prediction, Snapshot
from .state import QueueState

__all__ = [
    "DEFAULT", "KINDS", "PREDICTORS", "Event", "EventFileError", "Prediction", "QueueState",
    "Snapshot", "phrase", "predict", "read_events", "resume",
]
