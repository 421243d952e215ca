"""Calls (supervisor): the call log, filtered and paged, exported as CSV, and one call's
timeline with the story of why it ended where it did.

Caller numbers are masked unless the user's role may reveal them and they asked to
(`reveal=1`); every reveal and every export goes to the audit trail, so who saw which
numbers can be answered later.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for

from ..models import CALL_OUTCOMES
from . import call_queries as q
from . import timeline
from .auth import current_user, require_role
from .context import AdminServices, admin_services
from .masking import mask_number
from .roles import SUPERVISOR
from .timeline_text import human_duration

bp = Blueprint("admin_calls", __name__, url_prefix="/admin/calls")
bp.before_request(require_role(SUPERVISOR))

CSV_ROWS_PER_CHUNK = 200


def _wants_reveal() -> bool:
    return request.args.get("reveal") == "1"


def _reveal(a: AdminServices, target: str, **data: Any) -> bool:
    """True when numbers are shown in full on this response; each time, it is audited."""
    user = current_user()
    if not (_wants_reveal() and user is not None and a.may_reveal(user.role)):
        return False
    a.audit.record(user.username, "reveal_numbers", target, **data)
    return True


def _number_shower(revealed: bool) -> Callable[[str | None], str]:
    return (lambda n: n or "") if revealed else mask_number


def _local(a: AdminServices) -> Callable[[datetime | None], str]:
    def local(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        return at.astimezone(a.zone).strftime(fmt) if at else ""
    return local


def _filters(a: AdminServices) -> q.CallFilters:
    return q.parse_filters(request.args, a.zone, a.ivr.config.sms.default_region or "US")


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.get("/")
def calls() -> Any:
    a = admin_services()
    filters = _filters(a)
    page = q.page_of_calls(a.ivr.report_sessions, filters, _page_number(), a.page_size)
    revealed = _reveal(a, "calls", filters=filters.active, page=page.page)
    keep = {**filters.active, **({"reveal": "1"} if revealed else {})}
    try:
        flows, queues = q.filter_choices(a.ivr.registry.live())
    except Exception:  # noqa: BLE001 - suggestions only: a broken flows folder hides them
        flows, queues = [], []
    return render_template(
        "admin/calls.html", page=page, filters=filters, outcomes=CALL_OUTCOMES,
        outcome_labels=timeline.OUTCOME_LABELS, flows=flows, queues=queues,
        revealed=revealed, may_reveal=a.may_reveal(current_user().role),
        reveal_refused=_wants_reveal() and not revealed, zone=a.zone.key,
        shown=_number_shower(revealed), local=_local(a), duration=human_duration,
        page_url=lambda n: url_for(".calls", **keep, page=n),
        reveal_url=url_for(".calls", **filters.active, page=page.page, reveal="1"),
        hide_url=url_for(".calls", **filters.active, page=page.page),
        csv_url=url_for(".export", **keep),
        call_url=lambda sid: url_for(".call", call_sid=sid,
                                     **({"reveal": "1"} if revealed else {})))


@bp.get("/export.csv")
def export() -> Response:
    """Every call the filters match (not just a page), streamed as it is read."""
    a = admin_services()
    filters = _filters(a)
    user = current_user()
    revealed = _reveal(a, "calls.csv", filters=filters.active)
    a.audit.record(user.username, "calls_exported", "calls.csv", filters=filters.active,
                   revealed=revealed)
    rows = q.all_calls(a.ivr.report_sessions, filters)
    shown, zone = _number_shower(revealed), a.zone
    stamp = a.ivr.clock().astimezone(zone).strftime("%Y%m%d-%H%M")
    return Response(_csv_chunks(rows, lambda c: q.csv_row(c, zone, shown(c.from_number))),
                    mimetype="text/csv", headers={
                        "Content-Disposition": f'attachment; filename="calls-{stamp}.csv"',
                        "Cache-Control": "no-store"})


def _csv_chunks(rows: Iterator[Any], to_cells: Callable[[Any], list[str]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(q.CSV_HEADER)
    for n, row in enumerate(rows, 1):
        writer.writerow(to_cells(row))
        if n % CSV_ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@bp.get("/<call_sid>")
def call(call_sid: str) -> Any:
    a = admin_services()
    record = q.call_record(a.ivr.report_sessions, call_sid[:64])
    if record is None:
        return render_template(
            "admin/error.html", code=404, name="Call not found",
            description=f"There is no call {call_sid[:64]} in the call log. It may not have "
                        "been written yet (the log is a moment behind live calls)."), 404
    revealed = _reveal(a, call_sid)
    told = timeline.build(record.call, record.events, record.messages, record.survey,
                          record.callbacks, a.zone)
    return render_template(
        "admin/call.html", c=record.call, record=record, story=told.story,
        entries=told.entries, revealed=revealed,
        may_reveal=a.may_reveal(current_user().role),
        reveal_refused=_wants_reveal() and not revealed, zone=a.zone.key,
        shown=_number_shower(revealed), local=_local(a), duration=human_duration,
        outcome_labels=timeline.OUTCOME_LABELS,
        reveal_url=url_for(".call", call_sid=call_sid, reveal="1"),
        hide_url=url_for(".call", call_sid=call_sid),
        back_url=url_for(".calls", **({"reveal": "1"} if revealed else {})))
