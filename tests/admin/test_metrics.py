"""The dashboard's definitions, on hand-built rows: rates over ended calls, queue waits
paired from events, estimate accuracy over answered callers only, CSAT, and buckets in the
admin zone across DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr_server.admin import metrics as m

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
T0 = dt.datetime(2031, 5, 6, 14, 0, tzinfo=UTC)


def call(n: int, outcome: str | None, at: dt.datetime = T0, ended: bool = True) -> m.CallRow:
    return m.CallRow(f"CA{n}", at, at + dt.timedelta(minutes=3) if ended else None, outcome)


def ev(sid: str, kind: str, seconds: float, **data: object) -> m.EventRow:
    return m.EventRow(sid, T0 + dt.timedelta(seconds=seconds), kind, dict(data))


def pred(wait: float, p10: float, p90: float) -> dict[str, float]:
    return {"wait": wait, "p10": p10, "p90": p90}


def test_rates_are_shares_of_ended_calls_and_ignore_calls_in_progress() -> None:
    rows = [call(1, "self-served"), call(2, "self-served"), call(3, "transferred"),
            call(4, "abandoned"), call(5, None, ended=False)]
    f = m.call_figures(rows)
    assert (f.calls, f.ended) == (5, 4)
    assert f.containment == pytest.approx(0.5)
    assert f.transfer_rate == pytest.approx(0.25)
    assert f.abandonment == pytest.approx(0.25)


def test_rates_are_none_not_zero_without_ended_calls() -> None:
    f = m.call_figures([call(1, None, ended=False)])
    assert (f.containment, f.transfer_rate, f.abandonment) == (None, None, None)
    assert m.format_share(f.containment) == "—"
    assert m.format_share(0.0) == "0%"


def test_a_call_with_an_outcome_but_no_end_time_counts_as_ended() -> None:
    assert m.call_figures([call(1, "abandoned", ended=False)]).abandonment == 1.0


def test_p90_is_nearest_rank_so_it_is_a_wait_somebody_had() -> None:
    assert m.percentile(list(range(1, 11)), 90) == 9
    assert m.percentile(list(range(1, 101)), 90) == 90
    assert m.percentile([42], 90) == 42
    assert m.percentile([], 90) is None


def test_visits_take_the_answered_wait_and_the_prediction_from_joining() -> None:
    visits = m.queue_visits([
        ev("A", "queue_joined", 0, queue="q", predicted=pred(60, 30, 120)),
        ev("A", "queue_answered", 70, queue="q", waited=70),
        ev("A", "queue_result", 400, queue="q", result="bridged", waited=400,
           predicted=pred(60, 30, 120)),
    ])
    [v] = visits
    assert (v.served, v.waited, v.result) == (True, 70, "bridged")
    assert v.predicted == m.Prediction(60, 30, 120)


def test_a_call_that_queues_twice_makes_two_visits() -> None:
    visits = m.queue_visits([
        ev("A", "queue_joined", 0, queue="q", predicted=None),
        ev("A", "queue_result", 50, queue="q", result="redirected", waited=50),
        ev("A", "queue_joined", 60, queue="q", predicted=pred(10, 5, 20)),
        ev("A", "queue_result", 90, queue="q", result="bridged", waited=30),
    ])
    assert [(v.result, v.waited, v.served) for v in visits] == [
        ("redirected", 50, False), ("bridged", 30, True)]
    assert visits[1].predicted == m.Prediction(10, 5, 20)


def test_waits_count_callers_who_gave_up_but_not_ones_still_waiting() -> None:
    visits = m.queue_visits([
        ev("A", "queue_joined", 0, queue="q"),
        ev("A", "queue_answered", 10, queue="q", waited=10),
        ev("B", "queue_joined", 0, queue="q"),
        ev("B", "queue_result", 30, queue="q", result="hangup", waited=30),
        ev("C", "queue_joined", 0, queue="q"),  # still waiting: no wait yet
    ])
    w = m.wait_figures(visits)
    assert (w.waits, w.served) == (2, 1)
    assert w.average == 20
    assert w.p90 == 30


def test_accuracy_judges_only_answered_callers_with_an_estimate() -> None:
    visits = m.queue_visits([
        ev("A", "queue_joined", 0, queue="q", predicted=pred(60, 40, 90)),
        ev("A", "queue_answered", 80, queue="q", waited=80),  # error 20, inside
        ev("B", "queue_joined", 0, queue="q", predicted=pred(60, 40, 90)),
        ev("B", "queue_answered", 100, queue="q", waited=100),  # error 40, outside
        ev("C", "queue_joined", 0, queue="q", predicted=pred(60, 40, 90)),
        ev("C", "queue_result", 5, queue="q", result="hangup", waited=5),  # censored
        ev("D", "queue_joined", 0, queue="q", predicted=None),
        ev("D", "queue_answered", 10, queue="q", waited=10),  # told nothing
    ])
    a = m.accuracy(visits)
    assert a.judged == 2
    assert a.mae == 30
    assert a.within == 0.5
    assert sorted((p["x"], p["y"], p["in"]) for p in a.points) == [
        (60, 80, True), (60, 100, False)]


def test_accuracy_interval_bounds_are_inclusive() -> None:
    visits = m.queue_visits([
        ev("A", "queue_joined", 0, queue="q", predicted=pred(60, 40, 90)),
        ev("A", "queue_answered", 90, queue="q", waited=90)])
    assert m.accuracy(visits).within == 1.0


def test_accuracy_without_judged_callers_is_none() -> None:
    a = m.accuracy([])
    assert (a.judged, a.mae, a.within, a.points) == (0, None, None, [])


def test_accuracy_thins_the_scatter_but_not_the_figures() -> None:
    events = []
    for i in range(50):
        events += [ev(f"C{i}", "queue_joined", 0, queue="q", predicted=pred(10, 5, 20)),
                   ev(f"C{i}", "queue_answered", 12, queue="q", waited=12)]
    a = m.accuracy(m.queue_visits(events), max_points=10)
    assert a.judged == 50 and len(a.points) == 10 and a.mae == 2


def test_csat_is_the_share_of_fours_and_fives_among_answers() -> None:
    c = m.csat([5, 4, 3, 1, None])
    assert (c.answers, c.satisfied, c.mean) == (4, 0.5, pytest.approx(13 / 4))
    assert m.csat([None]) == m.Csat(0, None, None)


def test_callbacks_are_counted_by_their_state_now() -> None:
    f = m.callback_figures({"completed": 3, "failed": 1, "scheduled": 2, "cancelled": 1})
    assert (f.requested, f.completed, f.failed, f.pending, f.cancelled) == (7, 3, 1, 2, 1)


def test_texts_refused_for_opted_out_numbers_are_not_sent() -> None:
    f = m.sms_figures({"delivered": 4, "failed": 1, "refused": 2, "queued": 1})
    assert (f.sent, f.failed, f.refused) == (6, 1, 2)


def test_short_periods_are_bucketed_by_hour_longer_ones_by_day() -> None:
    start = dt.datetime(2031, 5, 6, tzinfo=NY)
    assert m.hourly(start, start + dt.timedelta(days=2), NY)
    assert not m.hourly(start, start + dt.timedelta(days=2, seconds=1), NY)


def test_two_days_across_the_fall_dst_change_are_still_charted_by_the_hour() -> None:
    start, end = dt.datetime(2031, 11, 1, tzinfo=NY), dt.datetime(2031, 11, 3, tzinfo=NY)
    assert end.astimezone(UTC) - start.astimezone(UTC) == dt.timedelta(hours=49)
    assert m.hourly(start, end, NY)
    assert len(m.calls_over_time([], start, end, NY)) == 49


def test_days_are_local_days_in_the_admin_zone() -> None:
    start, end = dt.datetime(2031, 5, 6, tzinfo=NY), dt.datetime(2031, 5, 9, tzinfo=NY)
    rows = [call(1, "abandoned", dt.datetime(2031, 5, 7, 3, 30, tzinfo=UTC)),  # 6th, 23:30
            call(2, "self-served", dt.datetime(2031, 5, 7, 4, 30, tzinfo=UTC))]  # 7th, 00:30
    series = m.calls_over_time(rows, start, end, NY)
    assert [b.calls for b in series] == [1, 1, 0]
    assert [b.abandonment for b in series] == [1.0, 0.0, None]
    assert series[0].label == "Tue 06 May"


def test_a_day_across_the_spring_dst_change_is_23_hours_and_its_calls_stay_in_it() -> None:
    start, end = dt.datetime(2031, 3, 8, tzinfo=NY), dt.datetime(2031, 3, 11, tzinfo=NY)
    rows = [call(1, "self-served", dt.datetime(2031, 3, 10, 3, 30, tzinfo=UTC)),  # 9th 23:30 EDT
            call(2, "self-served", dt.datetime(2031, 3, 9, 5, 30, tzinfo=UTC)),  # 9th 00:30 EST
            call(3, "self-served", dt.datetime(2031, 3, 9, 4, 30, tzinfo=UTC))]  # 8th 23:30 EST
    series = m.calls_over_time(rows, start, end, NY)
    assert [b.start.day for b in series] == [8, 9, 10]
    assert [b.calls for b in series] == [1, 2, 0]
    # (aware datetimes in one zone subtract as wall times: compare real time in UTC)
    assert series[2].start.astimezone(UTC) - series[1].start.astimezone(UTC) == \
        dt.timedelta(hours=23)


def test_the_repeated_hour_of_the_fall_dst_change_is_two_buckets() -> None:
    start, end = dt.datetime(2031, 11, 2, tzinfo=NY), dt.datetime(2031, 11, 3, tzinfo=NY)
    rows = [call(1, "abandoned", dt.datetime(2031, 11, 2, 5, 30, tzinfo=UTC)),  # 01:30 EDT
            call(2, "self-served", dt.datetime(2031, 11, 2, 6, 30, tzinfo=UTC))]  # 01:30 EST
    series = m.calls_over_time(rows, start, end, NY)
    assert len(series) == 25
    assert [b.label for b in series[1:3]] == ["Sun 02 01:00 EDT", "Sun 02 01:00 EST"]
    assert [b.calls for b in series[1:3]] == [1, 1]
    assert [b.abandonment for b in series[1:3]] == [1.0, 0.0]


def test_the_skipped_hour_of_the_spring_dst_change_has_no_bucket() -> None:
    start, end = dt.datetime(2031, 3, 9, tzinfo=NY), dt.datetime(2031, 3, 10, tzinfo=NY)
    labels = [b.label for b in m.calls_over_time([], start, end, NY)]
    assert len(labels) == 23
    assert "Sun 09 02:00" not in labels and "Sun 09 03:00" in labels


def test_hours_follow_zones_offset_by_a_half_hour() -> None:
    india = ZoneInfo("Asia/Kolkata")
    start = dt.datetime(2031, 5, 6, 10, tzinfo=india)
    rows = [call(1, "self-served", dt.datetime(2031, 5, 6, 5, 10, tzinfo=UTC))]  # 10:40 IST
    series = m.calls_over_time(rows, start, start + dt.timedelta(hours=3), india)
    assert [(b.label, b.calls) for b in series] == [
        ("Tue 06 10:00", 1), ("Tue 06 11:00", 0), ("Tue 06 12:00", 0)]


def test_calls_outside_the_period_are_not_bucketed() -> None:
    start = dt.datetime(2031, 5, 6, 9, tzinfo=UTC)
    series = m.calls_over_time([call(1, "self-served", start - dt.timedelta(minutes=1))],
                               start, start + dt.timedelta(hours=2), ZoneInfo("UTC"))
    assert [b.calls for b in series] == [0, 0]


def test_waits_read_as_people_say_them() -> None:
    assert [m.format_seconds(s) for s in (None, 0, 45, 185, 3720)] == [
        "—", "0s", "45s", "3m 05s", "1h 02m"]
