"""What the Calls page tests share: the test's own day and numbers, the company line with a
queue and agents, and readers for the list, the timeline and the audit log.

The test database outlives runs and is shared: every test dials from numbers of its own on
a day of its own (a random Tuesday decades away) and only looks for the calls it made.
"""

from __future__ import annotations

import datetime as dt
import html
import random
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr_server.models import AuditEvent
from ivr_server.simulator import SimulatedCall
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport

from ..conftest import AUTH_TOKEN, PUBLIC_URL
from .conftest import AdminClient

__all__ = ["clock", "config", "line", "supervisor"]  # fixtures: `import *` brings only these

NEW_YORK = ZoneInfo("America/New_York")
COMPANY_LINE = "+15005550006"
QUEUE = "front-desk"


class CallerClock:
    """The server's clock: this test's day, `at` seconds in, plus the current caller's
    simulated time (so waits on hold really pass)."""

    def __init__(self, base: dt.datetime) -> None:
        self.base, self.at, self.call = base, 0.0, None

    def __call__(self) -> dt.datetime:
        elapsed = self.call.elapsed if self.call is not None else 0.0
        return self.base + dt.timedelta(seconds=self.at + elapsed)


def a_day_of_our_own() -> dt.datetime:
    """A Tuesday at 15:00 UTC (10:00 or 11:00 in New York: the demo company is open)."""
    first_tuesday = dt.date(2031, 1, 7)
    day = first_tuesday + dt.timedelta(weeks=random.randrange(3000))
    return dt.datetime.combine(day, dt.time(15), dt.UTC)


def a_number() -> str:
    return f"+1628{random.randrange(2, 10)}{random.randrange(10**6):06d}"


@pytest.fixture
def clock() -> CallerClock:
    return CallerClock(a_day_of_our_own())


@pytest.fixture
def config(config):  # noqa: ANN001, ANN201 - the shared config, with these pages' settings
    return (config.with_section("admin", time_zone="America/New_York", page_size=2)
            .with_section("sms", from_number=COMPANY_LINE, company="Acme", wait_threshold=60,
                          wait_min_change=120, wait_max_messages=2))


@pytest.fixture
def line(app, clock: CallerClock):  # noqa: ANN001, ANN201
    """line(number, at=seconds) -> a dialled SimulatedCall, at that time of the test's day.
    The front desk (its agents on duty since the app started) served callers for the hour
    before the test's calls, each after about 4 minutes, and three callers are waiting."""
    queues = SimulatedQueues()
    state = app.extensions["ivr"].queues
    opened = clock.base.timestamp()
    clock.base += dt.timedelta(hours=1)  # the queue's log must run forward in time
    for i in range(12):
        sid = f"CAhist{i:02d}"
        state.arrive(QUEUE, sid, opened + i * 200)
        state.answer(QUEUE, sid, opened + i * 200 + 240)
        state.hangup(QUEUE, sid, opened + i * 200 + 400)
    for i in range(3):
        state.arrive(QUEUE, f"CAahead{i}", opened + 3500 + i)

    def _dial(number: str, at: float = 0.0) -> SimulatedCall:
        call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, from_=number,
                             to=COMPANY_LINE, queues=queues)
        clock.at, clock.call = at, call
        call.dial()
        return call

    return _dial


@pytest.fixture
def supervisor(signed_in) -> AdminClient:  # noqa: ANN001
    return signed_in("supervisor")


def logged(app) -> None:  # noqa: ANN001
    """Write the queued call log now, as the background writer would a moment later."""
    app.extensions["ivr"].writer.drain()


def billing_call(line, number: str, at: float = 0.0) -> SimulatedCall:  # noqa: ANN001
    call = line(number, at)
    call.press("1")
    call.press("12345678")  # fails the Luhn check
    call.press("12345674")
    call.answer_dial()
    return call


def hung_up_on_hold(line, number: str, at: float = 0.0, wait: int = 300) -> SimulatedCall:  # noqa: ANN001
    call = line(number, at)
    call.press("0")
    call.wait(wait)
    call.hangup()
    return call


def listed(response) -> list[str]:  # noqa: ANN001
    """The call SIDs in the list, top to bottom."""
    assert response.status_code == 200, response.text
    return re.findall(r'<tr data-call-sid="([^"]+)"', response.text)


def timeline_of(response) -> list[tuple[str, str]]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    items = re.findall(r'<li data-kind="([^"]+)".*?<span class="text">(.*?)</span>',
                       response.text, re.S)
    return [(kind, html.unescape(text)) for kind, text in items]


def story_of(response) -> str:  # noqa: ANN001
    match = re.search(r'id="call-story"[^>]*>(.*?)</p>', response.text, re.S)
    assert match, response.text
    return html.unescape(match.group(1))


def audit_of(app, username: str, action: str) -> list[AuditEvent]:  # noqa: ANN001
    with app.extensions["ivr"].session_factory() as db:
        return list(db.scalars(select(AuditEvent).where(
            AuditEvent.username == username, AuditEvent.action == action)
            .order_by(AuditEvent.id)))


def local(at: dt.datetime) -> str:
    return at.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")


def masked(number: str) -> str:
    return f"+1 {'•' * 8}{number[-2:]}"
