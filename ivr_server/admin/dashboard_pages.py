"""The dashboard (a period's figures and charts) and the live queues (now, refreshed by
queues.js from queues.json), for supervisors.

Times the supervisor types or reads are in the admin zone ([admin] time_zone); "now" is the
app's injected clock, so tests and the pages agree on what "the last 7 days" means.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis
from flask import Blueprint, Response, jsonify, render_template, request, url_for

from . import metrics as m
from .auth import require_role
from .context import admin_services
from .live_queues import all_queues, flow_queues
from .metrics_queries import DashboardRows, Filters, fetch, flows_in
from .roles import SUPERVISOR

bp = Blueprint("admin_dashboard", __name__, url_prefix="/admin")
bp.before_request(require_role(SUPERVISOR))

DEFAULT_DAYS = 7
MAX_DAYS = 400
CHART_JS = Path(__file__).parent / "static" / "vendor" / "chart.umd.js"
REFRESH_SECONDS = 5


def chart_js_available() -> bool:
    """Whether the vendored Chart.js is there (assets.vendored(), looked at on start-up;
    `./dev assets` builds it); without it the page shows its figures and a note instead."""
    assets = admin_services().assets
    if assets is not None and hasattr(assets, "chart"):
        return bool(assets.chart)
    return CHART_JS.is_file()


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime
    from_text: str  # as shown back in the form
    to_text: str
    error: str | None = None


def _parse(text: str, zone: ZoneInfo) -> tuple[dt.datetime, bool]:
    """A date or a date and time in the admin zone; True when only a date was given."""
    value = dt.datetime.fromisoformat(text.strip())
    date_only = len(text.strip()) <= 10
    return (value if value.tzinfo else value.replace(tzinfo=zone)), date_only


def parse_period(args: Any, now: dt.datetime, zone: ZoneInfo) -> Period:
    """From `from`/`to` (dates, the `to` day included; or ISO date-times, `to` excluded);
    by default the last 7 days including today, in the admin zone."""
    today = now.astimezone(zone).date()
    default_from = today - dt.timedelta(days=DEFAULT_DAYS - 1)
    default = Period(dt.datetime.combine(default_from, dt.time(), tzinfo=zone),
                     dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=zone),
                     default_from.isoformat(), today.isoformat())
    raw_from, raw_to = args.get("from", "").strip(), args.get("to", "").strip()
    if not raw_from and not raw_to:
        return default
    try:
        start, _ = _parse(raw_from, zone) if raw_from else (default.start, True)
        if raw_to:
            end, date_only = _parse(raw_to, zone)
            if date_only:
                end = dt.datetime.combine(end.date() + dt.timedelta(days=1), dt.time(),
                                          tzinfo=zone)
        else:
            end = default.end
    except ValueError:
        return _with_error(default, "Dates are YYYY-MM-DD; showing the last 7 days.")
    if end <= start:
        return _with_error(default, "The period ends before it starts; showing the last "
                                    "7 days.")
    if end - start > dt.timedelta(days=MAX_DAYS):
        return _with_error(default, f"Periods are at most {MAX_DAYS} days; showing the "
                                    f"last 7 days.")
    return Period(start, end, raw_from or default.from_text, raw_to or default.to_text)


def _with_error(p: Period, error: str) -> Period:
    return Period(p.start, p.end, p.from_text, p.to_text, error)


def _tile(key: str, label: str, value: str, hint: str, sub: str = "") -> dict[str, str]:
    return {"key": key, "label": label, "value": value, "hint": hint, "sub": sub}


def tiles(rows: DashboardRows, visits: list[m.QueueVisit]) -> list[dict[str, str]]:
    """The figures, each with the definition shown under it."""
    calls = m.call_figures(rows.calls)
    waits = m.wait_figures(visits)
    acc = m.accuracy(visits)
    cb = m.callback_figures(rows.callbacks)
    sms = m.sms_figures(rows.sms_out)
    sat = m.csat(rows.scores)
    of_ended = f"{{}} of {calls.ended} ended" if calls.ended else ""
    judged = f"over {acc.judged} answered caller{'s' * (acc.judged != 1)}" if acc.judged \
        else "no answered caller had an estimate"
    return [
        _tile("calls", "Calls", str(calls.calls), "Calls that started in the period.",
              f"{calls.ended} ended" if calls.calls else ""),
        _tile("containment", "Self-service containment", m.format_share(calls.containment),
              "Self-served ÷ calls that ended: finished in the IVR, no person needed.",
              of_ended.format(calls.self_served)),
        _tile("transfer", "Transfer rate", m.format_share(calls.transfer_rate),
              "Transferred ÷ calls that ended.", of_ended.format(calls.transferred)),
        _tile("abandonment", "Abandonment rate", m.format_share(calls.abandonment),
              "Abandoned ÷ calls that ended: the caller hung up before the flow finished "
              "(in a menu or while queued).", of_ended.format(calls.abandoned)),
        _tile("avg_wait", "Average wait", m.format_seconds(waits.average),
              "Time in queue of callers who left it, answered or not (a caller who gave up "
              "waited too).", f"{waits.waits} caller{'s' * (waits.waits != 1)}"
              if waits.waits else ""),
        _tile("p90_wait", "90th percentile wait", m.format_seconds(waits.p90),
              "9 in 10 of those callers waited at most this long."),
        _tile("estimate_error", "Wait estimate error", m.format_seconds(acc.mae),
              "Mean absolute difference between the wait announced when the caller joined "
              "and the real wait. Only callers who reached an agent: for one who hung up we "
              "only know they would have waited longer, not how long.", judged),
        _tile("estimate_within", "Waits within the announced range",
              m.format_share(acc.within),
              "Share of answered callers whose real wait fell inside the range they were "
              "given (10th to 90th percentile); about 80% means honest ranges.", judged),
        _tile("callbacks_requested", "Callbacks requested", str(cb.requested),
              "Call-back requests made in the period.",
              f"{cb.pending} still pending" if cb.pending else ""),
        _tile("callbacks_completed", "Callbacks completed", str(cb.completed),
              "Of those requests, how many have been completed.",
              m.format_share(m.ratio(cb.completed, cb.requested)) + " of requested"
              if cb.requested else ""),
        _tile("callbacks_failed", "Callbacks failed", str(cb.failed),
              "Of those requests, how many failed (attempts used up, no window left).",
              f"{cb.cancelled} cancelled" if cb.cancelled else ""),
        _tile("sms_sent", "Texts sent", str(sms.sent),
              "Texts to callers handed on for sending in the period; texts refused because "
              "the number had opted out are not counted.",
              f"{sms.failed} failed" if sms.failed else ""),
        _tile("opt_outs", "SMS opt-outs", str(rows.opt_outs),
              "Numbers that sent STOP in the period and have not sent START since. "
              "Counted for all flows and queues.", ""),
        _tile("csat", "Survey CSAT", m.format_share(sat.satisfied),
              "Share of survey answers (1–5) received in the period that were 4 or 5; "
              "surveys nobody answered are not counted.",
              f"{sat.answers} answer{'s' * (sat.answers != 1)}, mean {sat.mean:.1f}"
              if sat.answers else "no answers"),
    ]


def chart_data(rows: DashboardRows, visits: list[m.QueueVisit], period: Period,
               zone: ZoneInfo, now: dt.datetime) -> dict[str, Any]:
    """What dashboard.js draws: buckets up to the one holding now, when the period holds
    it (hours still to come are not "no calls"); and the answered callers' announced vs
    real waits."""
    by_hour = m.hourly(period.start, period.end, zone)
    holds_now = period.start <= now < period.end
    end = now + dt.timedelta(seconds=1) if holds_now else period.end  # now's bucket too
    series = m.calls_over_time(rows.calls, period.start, end, zone, by_hour)
    acc = m.accuracy(visits)
    return {
        "by": "hour" if by_hour else "day",
        "labels": [b.label for b in series],
        "calls": [b.calls for b in series],
        "abandonment": [None if b.abandonment is None else round(b.abandonment * 100, 1)
                        for b in series],
        "wait": {"points": acc.points, "judged": acc.judged},
    }


def _filters_from(args: Any, period: Period) -> Filters:
    flow = args.get("flow", "").strip()[:100] or None
    queue = args.get("queue", "").strip()[:64] or None
    return Filters(period.start, period.end, flow, queue)


@bp.get("/dashboard")
def dashboard() -> Any:
    a = admin_services()
    ivr = a.ivr
    now = ivr.clock()
    period = parse_period(request.args, now, a.zone)
    filters = _filters_from(request.args, period)
    rows = fetch(ivr.report_sessions, filters)
    visits = [v for v in m.queue_visits(rows.events)
              if not filters.queue or v.queue == filters.queue]
    flows = sorted(set(ivr.registry.live()) | set(flows_in(ivr.report_sessions,
                                                            period.start, period.end))
                   | ({filters.flow} if filters.flow else set()))
    queues = sorted(set(ivr.config.queues.agents) | flow_queues(ivr)
                    | ({filters.queue} if filters.queue else set()))
    return render_template(
        "admin/dashboard.html", period=period, filters=filters, tiles=tiles(rows, visits),
        charts=chart_data(rows, visits, period, a.zone, now), flows=flows, queues=queues,
        truncated=rows.truncated, chart_js=chart_js_available(), zone=str(a.zone),
        range_text=_range_text(period, a.zone))


def _range_text(period: Period, zone: ZoneInfo) -> str:
    start, end = period.start.astimezone(zone), period.end.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({zone})"


def live_state() -> dict[str, Any]:
    """Every queue now, as queues.json serves it and the page first renders it; "error"
    is set (and "queues" empty) when Redis cannot be read at all."""
    a = admin_services()
    now = a.ivr.clock()
    state: dict[str, Any] = {"now": now.isoformat(),
                             "updated": now.astimezone(a.zone).strftime("%H:%M:%S"),
                             "queues": [], "error": None}
    try:
        state["queues"] = [q.as_json() for q in all_queues(a.ivr, now)]
    except redis.RedisError as exc:
        state["error"] = f"live state unavailable ({type(exc).__name__})"
    return state


@bp.get("/queues")
def queues() -> Any:
    return render_template("admin/queues.html", state=live_state(),
                           config={"url": url_for(".queues_json"),
                                   "every": REFRESH_SECONDS * 1000})


@bp.get("/queues.json")
def queues_json() -> Response:
    state = live_state()
    response = jsonify(state)
    response.status_code = 503 if state["error"] else 200
    response.headers["Cache-Control"] = "no-store"
    return response
