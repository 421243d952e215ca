"""Reading the call log the way a supervisor would: the call's row and its events in order.

`source` is the app under test (its queued call log is written out first, as the
background writer would) or a database URL to read as it is.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import phonenumbers
from sqlalchemy import select

from ivr_server.db import make_engine, make_session_factory
from ivr_server.models import Call, CallEvent


def fresh_number(area: str = "201") -> str:
    """A valid US number no earlier test used: the database outlives a run, and a number
    surveyed or opted out before would change what the caller gets."""
    while True:
        number = f"+1{area}{random.randint(2_000_000, 9_999_999)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


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


def answered(turn: Callable[[], Any], *, within: float, hung: str) -> Any:
    """Run a caller's turn in a thread and return what it returned (or raise what it
    raised); `hung` fails the test if it has not ended after `within` seconds, a bound that
    only keeps a broken build from hanging the suite."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = turn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), hung
    if "error" in out:
        raise out["error"]
    return out.get("value")
