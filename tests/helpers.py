"""Reading the call log the way a supervisor would: the call's row and its events in order."""

from __future__ import annotations

from sqlalchemy import select

from ivr_server.db import make_engine, make_session_factory
from ivr_server.models import Call, CallEvent


def call_row(database_url: str, call_sid: str) -> Call:
    with make_session_factory(make_engine(database_url))() as db:
        row = db.scalar(select(Call).where(Call.call_sid == call_sid))
        assert row is not None, f"no call {call_sid} in the log"
        db.expunge(row)
        return row


def call_events(database_url: str, call_sid: str) -> list[CallEvent]:
    with make_session_factory(make_engine(database_url))() as db:
        rows = list(db.scalars(select(CallEvent).where(CallEvent.call_sid == call_sid)
                               .order_by(CallEvent.id)))
        for row in rows:
            db.expunge(row)
        return rows
