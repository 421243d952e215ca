"""Reading the call log the way a supervisor would: the call's row and its events in order.

`source` is the app under test (its queued call log is written out first, as the
background writer would) or a database URL to read as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ivr_server.db import make_engine, make_session_factory
from ivr_server.models import Call, CallEvent


def _sessions(source: Any):  # noqa: ANN202 - a sessionmaker
    if isinstance(source, str):
        return make_session_factory(make_engine(source))
    services = source.extensions["ivr"]
    services.writer.drain()
    return services.session_factory


def call_row(source: Any, call_sid: str) -> Call:
    with _sessions(source)() as db:
        row = db.scalar(select(Call).where(Call.call_sid == call_sid))
        assert row is not None, f"no call {call_sid} in the log"
        db.expunge(row)
        return row


def call_events(source: Any, call_sid: str) -> list[CallEvent]:
    with _sessions(source)() as db:
        rows = list(db.scalars(select(CallEvent).where(CallEvent.call_sid == call_sid)
                               .order_by(CallEvent.at, CallEvent.id)))
        for row in rows:
            db.expunge(row)
        return rows
