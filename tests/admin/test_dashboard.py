"""The dashboard page: known calls, queue events, callbacks, texts and surveys put in the
database for a flow of their own on a random far-future day (the PostgreSQL test database
is shared and outlives runs), then the figures the page shows."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from ivr_server.models import (
    Call,
    CallbackRequest,
    CallEvent,
    SmsMessage,
    SmsOptOut,
    SmsSurvey,
)

UTC = dt.UTC


@pytest.fixture
def day() -> dt.datetime:
    """Midnight UTC of a random day between 2031 and 2099: no other test's data is there."""
    offset = random.Random(uuid.uuid4().int).randint(0, 24_000)
    return dt.datetime(2031, 1, 1, tzinfo=UTC) + dt.timedelta(days=offset)


@pytest.fixture
def flow() -> str:
    return f"dash-{uuid.uuid4().hex[:10]}"


def _sid() -> str:
    return "CA" + uuid.uuid4().hex


def _number() -> str:
    return "+1415" + str(random.randint(1_000_000, 9_999_999))


class Seeder:
    """Rows straight into the call log and its neighbours, as the server would have left
    them (see queue_calls.py for the queue events' shape)."""

    def __init__(self, app: Flask, flow: str):
        self.factory = app.extensions["ivr"].session_factory
        self.flow = flow

    def add(self, *rows: Any) -> None:
        with self.factory.begin() as db:
            db.add_all(rows)

    def call(self, at: dt.datetime, outcome: str | None, *, queue: str | None = None,
             flow: str | None = None) -> str:
        sid = _sid()
        ended = at + dt.timedelta(minutes=4) if outcome else None
        self.add(Call(call_sid=sid, from_number=_number(), flow=flow or self.flow,
                      started_at=at, ended_at=ended, outcome=outcome, queue=queue,
                      status="completed" if outcome else "in-progress", tags={}))
        return sid

    def event(self, sid: str, at: dt.datetime, kind: str, **data: Any) -> None:
        self.add(CallEvent(event_id=str(uuid.uuid4()), call_sid=sid, at=at, node="hold",
                           kind=kind, data=data))

    def queued(self, sid: str, at: dt.datetime, queue: str, predicted: dict | None,
               waited: int, result: str) -> None:
        self.event(sid, at, "queue_joined", queue=queue, predicted=predicted)
        left = at + dt.timedelta(seconds=waited)
        if result == "bridged":
            self.event(sid, left, "queue_answered", queue=queue, waited=waited,
                       agent_call=_sid())
        if result != "waiting":
            self.event(sid, left + dt.timedelta(minutes=5), "queue_result", queue=queue,
                       result=result, waited=waited + (300 if result == "bridged" else 0),
                       predicted=predicted)

    def callback(self, at: dt.datetime, state: str, sid: str) -> None:
        self.add(CallbackRequest(number=_number(), queue="support", state=state,
                                 reason="offer", call_sid=sid, flow=self.flow, context={},
                                 created_at=at, updated_at=at))

    def sms(self, at: dt.datetime, status: str, sid: str | None) -> None:
        number = _number()
        self.add(SmsMessage(direction="outbound", kind="wait_estimate", to_number=number,
                            from_number="+15005550006", body="hi", status=status,
                            call_sid=sid, created_at=at, updated_at=at))

    def survey(self, at: dt.datetime, sid: str, score: int | None) -> None:
        self.add(SmsSurvey(number=_number(), call_sid=sid, asked_at=at, score=score,
                           answered_at=at + dt.timedelta(minutes=2) if score else None))


def tile(html: str, key: str) -> str:
    match = re.search(rf'data-metric="{key}"[^>]*>.*?<div class="value">(.*?)</div>', html,
                      re.S)
    assert match, f"no tile {key}"
    return match.group(1).strip()


def chart_json(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>',
                      html, re.S)
    assert match
    return json.loads(match.group(1))


def show(client: Any, **params: str) -> str:
    response = client.get("/admin/dashboard", query_string=params)
    assert response.status_code == 200, response.text
    return response.text


PREDICTED = {"wait": 60, "p10": 40, "p90": 90}


@pytest.fixture
def seeded(app: Flask, flow: str, day: dt.datetime) -> Seeder:
    """A day of one flow: 5 calls (2 self-served, 1 transferred after 80 s in queue, 1
    abandoned after 30 s in queue, 1 still on with an agent after 100 s), plus its
    callbacks, texts and survey answers; and some rows just outside it."""
    s = Seeder(app, flow)
    t = day + dt.timedelta(hours=10)
    a, b = s.call(t, "self-served"), s.call(t, "self-served")
    c = s.call(t, "transferred", queue="support")
    d = s.call(t + dt.timedelta(hours=1), "abandoned", queue="support")
    e = s.call(t + dt.timedelta(hours=2), None, queue="support")
    s.queued(c, t, "support", PREDICTED, 80, "bridged")  # error 20 s, inside 40..90
    s.queued(d, t, "support", PREDICTED, 30, "hangup")  # not judged: hung up
    s.queued(e, t, "support", PREDICTED, 100, "waiting")  # answered at 100: error 40, outside
    s.event(e, t + dt.timedelta(seconds=100), "queue_answered", queue="support", waited=100)
    for state in ("completed", "failed", "scheduled"):
        s.callback(t, state, d)
    s.sms(t, "delivered", a)
    s.sms(t, "refused", b)
    s.sms(t, "failed", c)
    s.survey(t, a, 5)
    s.survey(t, b, 4)
    s.survey(t, c, 2)
    s.survey(t, d, None)
    # Not this flow, or not this day:
    other = s.call(t, "abandoned", flow=flow + "-other")
    s.sms(t, "delivered", other)
    s.call(day - dt.timedelta(seconds=1), "abandoned")
    s.add(SmsOptOut(number=_number(), opted_out=True, keyword="STOP", changed_at=t),
          SmsOptOut(number=_number(), opted_out=False, keyword="START", changed_at=t))
    return s


def test_the_dashboard_shows_the_periods_figures_for_one_flow(
        seeded: Seeder, signed_in: Any, flow: str, day: dt.datetime) -> None:
    html = show(signed_in("supervisor"), flow=flow, **{"from": day.date().isoformat(),
                                                       "to": day.date().isoformat()})
    assert tile(html, "calls") == "5"
    assert tile(html, "containment") == "50%"  # 2 of the 4 that ended
    assert tile(html, "transfer") == "25%"
    assert tile(html, "abandonment") == "25%"
    assert tile(html, "avg_wait") == "1m 10s"  # 80, 30, 100
    assert tile(html, "p90_wait") == "1m 40s"
    assert tile(html, "estimate_error") == "30s"  # |60-80| and |60-100|; the hang-up isn't
    assert tile(html, "estimate_within") == "50%"
    assert tile(html, "callbacks_requested") == "3"
    assert tile(html, "callbacks_completed") == "1"
    assert tile(html, "callbacks_failed") == "1"
    assert tile(html, "sms_sent") == "2"  # the refused one never left
    assert tile(html, "opt_outs") == "1"  # the START cancelled the other
    assert tile(html, "csat") == "67%"
    assert "3 answers, mean 3.7" in html


def test_every_tile_says_what_it_counts(seeded: Seeder, signed_in: Any, flow: str,
                                        day: dt.datetime) -> None:
    html = show(signed_in("supervisor"), flow=flow, **{"from": day.date().isoformat(),
                                                       "to": day.date().isoformat()})
    tiles = re.findall(r'<div class="tile" data-metric="(\w+)" title="([^"]+)"', html)
    assert len(tiles) == 14
    assert all(len(hint) > 20 for _, hint in tiles)
    assert "reached an agent" in dict(tiles)["estimate_error"]
    assert "answered callers" in dict(tiles)["estimate_within"]


def test_a_period_without_data_shows_dashes_not_zero_percent(
        app: Flask, signed_in: Any, day: dt.datetime) -> None:
    html = show(signed_in("supervisor"), flow=f"empty-{uuid.uuid4().hex[:8]}",
                **{"from": day.date().isoformat(), "to": day.date().isoformat()})
    assert tile(html, "calls") == "0"
    for key in ("containment", "transfer", "abandonment", "avg_wait", "p90_wait",
                "estimate_error", "estimate_within", "csat"):
        assert tile(html, key) == "—", key


def test_the_queue_filter_keeps_that_queues_calls_and_waits(
        app: Flask, signed_in: Any, flow: str, day: dt.datetime) -> None:
    s = Seeder(app, flow)
    t = day + dt.timedelta(hours=9)
    one = s.call(t, "transferred", queue="sales")
    two = s.call(t, "abandoned", queue="support")
    s.queued(one, t, "sales", PREDICTED, 45, "bridged")
    s.queued(two, t, "support", PREDICTED, 300, "hangup")
    html = show(signed_in("supervisor"), flow=flow, queue="sales",
                **{"from": day.date().isoformat(), "to": day.date().isoformat()})
    assert tile(html, "calls") == "1"
    assert tile(html, "avg_wait") == "45s"
    assert tile(html, "abandonment") == "0%"
    assert '<option selected>sales</option>' in html


def test_short_periods_are_charted_by_the_hour_in_the_admin_zone(
        seeded: Seeder, signed_in: Any, flow: str, day: dt.datetime) -> None:
    html = show(signed_in("supervisor"), flow=flow, **{"from": day.date().isoformat(),
                                                       "to": day.date().isoformat()})
    data = chart_json(html)
    assert data["by"] == "hour"
    assert len(data["labels"]) == 24 and data["labels"][10].endswith("10:00")
    assert data["calls"][10:13] == [3, 1, 1]
    assert data["abandonment"][10:13] == [0.0, 100.0, None]  # 12:00's call has not ended
    assert sorted((p["x"], p["y"], p["in"]) for p in data["wait"]["points"]) == [
        (60, 80, True), (60, 100, False)]


def test_longer_periods_are_charted_by_the_day(seeded: Seeder, signed_in: Any, flow: str,
                                               day: dt.datetime) -> None:
    html = show(signed_in("supervisor"), flow=flow,
                **{"from": (day - dt.timedelta(days=1)).date().isoformat(),
                   "to": (day + dt.timedelta(days=1)).date().isoformat()})
    data = chart_json(html)
    assert data["by"] == "day"
    assert data["calls"] == [1, 5, 0]  # the call a second before midnight is the day before


@pytest.fixture
def new_york(config: Any) -> Any:
    return config.with_section("admin", time_zone="America/New_York")


def test_hours_are_the_admin_zones_hours_across_the_fall_dst_change(
        new_york: Any, clock: Any, flow: str, create_user: Any) -> None:
    from ivr_server import create_app

    from .conftest import PASSWORD, login

    app = create_app(new_york, clock=clock)
    try:
        s = Seeder(app, flow)
        s.call(dt.datetime(2031, 11, 2, 3, 30, tzinfo=UTC), "abandoned")  # 1 Nov, 23:30 EDT
        s.call(dt.datetime(2031, 11, 2, 5, 30, tzinfo=UTC), "self-served")  # 01:30 EDT
        s.call(dt.datetime(2031, 11, 2, 6, 30, tzinfo=UTC), "self-served")  # 01:30 EST
        name = f"sup-{uuid.uuid4().hex[:8]}"
        app.extensions["ivr_admin"].users.create(name, PASSWORD, "supervisor")
        client = app.test_client()
        login(client, name, PASSWORD)
        data = chart_json(show(client, flow=flow, **{"from": "2031-11-02", "to": "2031-11-02"}))
    finally:
        app.extensions["ivr"].redis.close()
    assert len(data["labels"]) == 25  # the day the clocks went back
    assert data["labels"][1:3] == ["Sun 02 01:00 EDT", "Sun 02 01:00 EST"]
    assert data["calls"][1:3] == [1, 1] and sum(data["calls"]) == 2


def test_the_default_period_is_the_last_7_days(app: Flask, signed_in: Any) -> None:
    html = show(signed_in("supervisor"))  # the clock: 24 November 2026
    assert 'name="from" value="2026-11-18"' in html
    assert 'name="to" value="2026-11-24"' in html
    data = chart_json(html)
    assert (data["by"], len(data["labels"])) == ("day", 7)


def test_todays_chart_stops_at_the_current_hour(app: Flask, signed_in: Any) -> None:
    data = chart_json(show(signed_in("supervisor"), **{"from": "2026-11-24",
                                                        "to": "2026-11-24"}))
    assert data["by"] == "hour"
    assert data["labels"][-1] == "Tue 24 15:00"  # the clock: 15:00 UTC; later hours aren't 0


@pytest.mark.parametrize("params", [{"from": "yesterday"}, {"from": "2031-05-06",
                                                              "to": "2031-05-01"}])
def test_a_bad_period_is_explained_and_the_default_shown(app: Flask, signed_in: Any,
                                                         params: dict[str, str]) -> None:
    html = show(signed_in("supervisor"), **params)
    assert 'id="period-error"' in html
    assert 'name="from" value="2026-11-18"' in html


def test_charts_are_drawn_by_the_vendored_chart_js_without_inline_script(
        app: Flask, signed_in: Any) -> None:
    app.extensions["ivr_admin"].assets = SimpleNamespace(chart=True)
    html = show(signed_in("supervisor"))
    assert 'id="chart-calls"' in html and 'id="chart-wait"' in html
    assert "/admin/static/vendor/chart.umd.js" in html
    assert "/admin/static/dashboard.js" in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


def test_without_chart_js_the_figures_stay_and_a_note_replaces_the_charts(
        seeded: Seeder, app: Flask, signed_in: Any, flow: str, day: dt.datetime) -> None:
    app.extensions["ivr_admin"].assets = SimpleNamespace(chart=False)
    html = show(signed_in("supervisor"), flow=flow, **{"from": day.date().isoformat(),
                                                       "to": day.date().isoformat()})
    assert 'id="charts-missing"' in html
    assert "chart.umd.js\"></script>" not in html and 'id="chart-calls"' not in html
    assert tile(html, "calls") == "5"


def test_the_dashboard_needs_a_signed_in_user(app: Flask) -> None:
    response = app.test_client().get("/admin/dashboard")
    assert response.status_code == 302 and "/admin/login" in response.location
