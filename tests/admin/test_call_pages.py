"""The Calls list as a supervisor uses it: real simulated calls through the demo flow, then
filters, pages, masked numbers and their audited reveal, and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re

import pytest

from ivr_server.admin.call_queries import csv_safe

from .call_pages_setup import *  # noqa: F403 - the fixtures
from .call_pages_setup import (
    NEW_YORK,
    QUEUE,
    a_number,
    audit_of,
    billing_call,
    hung_up_on_hold,
    listed,
    local,
    logged,
    masked,
)

# -- the list --------------------------------------------------------------------------------

def test_the_list_shows_the_newest_call_first_with_its_caller_masked(app, line, clock,
                                                                     supervisor):
    number = a_number()
    first = billing_call(line, number)
    second = hung_up_on_hold(line, number, at=600)
    logged(app)
    page = supervisor.get(f"/admin/calls/?caller={number[-6:]}")
    assert listed(page) == [second.call_sid, first.call_sid]
    row = page.text[page.text.index(f'data-call-sid="{second.call_sid}"'):]
    row = row[:row.index("</tr>")]
    assert local(clock.base + dt.timedelta(seconds=600)) in row, "started, in New York time"
    assert masked(number) in row and number not in page.text
    assert "company" in row and QUEUE in row and 'class="badge abandoned"' in row
    assert f'href="/admin/calls/{second.call_sid}"' in row
    assert "Times in America/New_York" in page.text


def test_a_caller_is_found_by_number_in_any_usual_format_or_by_its_last_digits(app, line,
                                                                              supervisor):
    number, other = a_number(), a_number()
    mine, theirs = billing_call(line, number), billing_call(line, other, at=60)
    logged(app)
    national = f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    for typed in (number, national, number[2:], number[-4:]):
        found = listed(supervisor.get("/admin/calls/", query_string={"caller": typed}))
        assert mine.call_sid in found and theirs.call_sid not in found, typed


def test_outcome_queue_and_flow_filters_narrow_the_list(app, line, supervisor):
    number = a_number()
    billed = billing_call(line, number)
    held = hung_up_on_hold(line, number, at=300)
    logged(app)

    def found(**filters: str) -> set[str]:
        rows = listed(supervisor.get("/admin/calls/", query_string={"caller": number,
                                                                     **filters}))
        return set(rows) & {billed.call_sid, held.call_sid}

    assert found(outcome="abandoned") == {held.call_sid}
    assert found(outcome="transferred") == {billed.call_sid}
    assert found(outcome="callback") == set()
    assert found(queue=QUEUE) == {held.call_sid}
    assert found(flow="company") == {billed.call_sid, held.call_sid}
    assert found(flow="agents") == set()


def test_the_time_range_is_read_in_the_admin_time_zone(app, line, clock, supervisor):
    number = a_number()
    morning = billing_call(line, number)
    afternoon = billing_call(line, number, at=3 * 3600)
    logged(app)
    started = clock.base.astimezone(NEW_YORK)
    day = started.strftime("%Y-%m-%d")
    just_before = (started - dt.timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M")
    half_hour_on = (started + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    assert listed(supervisor.get("/admin/calls/", query_string={
        "from": just_before, "to": half_hour_on})) == [morning.call_sid]
    assert listed(supervisor.get("/admin/calls/", query_string={
        "from": day, "to": day})) == [afternoon.call_sid, morning.call_sid]
    assert listed(supervisor.get("/admin/calls/", query_string={
        "from": half_hour_on, "to": day})) == [afternoon.call_sid]


def test_pages_keep_the_filters(app, line, supervisor):
    number = a_number()
    calls = [billing_call(line, number, at=i * 120) for i in range(3)]
    logged(app)
    first = supervisor.get("/admin/calls/", query_string={"caller": number, "outcome":
                                                           "transferred"})
    assert listed(first) == [calls[2].call_sid, calls[1].call_sid]  # page_size is 2
    assert 'data-total="3"' in first.text and "Page 1 of 2" in first.text
    older = html.unescape(re.search(r'id="page-next"[^>]*href="([^"]+)"', first.text)[1])
    assert f"caller=%2B{number[1:]}" in older and "outcome=transferred" in older
    second = supervisor.get(older)
    assert listed(second) == [calls[0].call_sid] and 'id="page-prev"' in second.text


def test_a_filter_that_cannot_be_read_is_reported_and_ignored(supervisor):
    page = supervisor.get("/admin/calls/", query_string={"from": "next tuesday",
                                                          "caller": "12345678901234567"})
    assert page.status_code == 200
    assert 'id="filter-errors"' in page.text
    assert "From: &#39;next tuesday&#39; is not a date" in page.text
    assert "Caller:" in page.text


def test_anyone_signed_out_is_sent_to_sign_in(app):  # noqa: ANN001
    response = app.test_client().get("/admin/calls/")
    assert response.status_code == 302 and "/admin/login" in response.location


# -- who sees which numbers ------------------------------------------------------------------

def test_a_supervisor_reveals_numbers_and_each_reveal_is_audited(app, line, supervisor):
    number = a_number()
    call = billing_call(line, number)
    logged(app)
    page = supervisor.get("/admin/calls/", query_string={"caller": number[-6:]})
    assert number not in page.text and 'id="reveal-numbers"' in page.text
    link = html.unescape(re.search(r'id="reveal-numbers" href="([^"]+)"', page.text)[1])
    revealed = supervisor.get(link)
    assert number in revealed.text and 'id="hide-numbers"' in revealed.text
    assert f'href="/admin/calls/{call.call_sid}?reveal=1"' in revealed.text
    one = supervisor.get(f"/admin/calls/{call.call_sid}?reveal=1")
    assert number in one.text
    assert number not in supervisor.get(f"/admin/calls/{call.call_sid}").text
    audit = audit_of(app, supervisor.username, "reveal_numbers")
    assert [a.target for a in audit] == ["calls", call.call_sid]
    assert audit[0].data["filters"] == {"caller": number[-6:]}


def test_ops_never_sees_full_numbers_even_when_asking(app, line, signed_in):
    ops = signed_in("ops")
    number = a_number()
    call = billing_call(line, number)
    logged(app)
    page = ops.get("/admin/calls/", query_string={"caller": number[-6:], "reveal": "1"})
    assert call.call_sid in listed(page)
    assert number not in page.text and masked(number) in page.text
    assert 'id="reveal-numbers"' not in page.text and 'id="reveal-refused"' in page.text
    one = ops.get(f"/admin/calls/{call.call_sid}?reveal=1")
    assert number not in one.text and masked(number) in one.text
    export = ops.get("/admin/calls/export.csv", query_string={"caller": number, "reveal": "1"})
    assert number not in export.text
    assert audit_of(app, ops.username, "reveal_numbers") == []


# -- the export --------------------------------------------------------------------------------

def csv_rows(response) -> dict[str, dict[str, str]]:  # noqa: ANN001
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return {row["call_sid"]: row for row in csv.DictReader(io.StringIO(response.text))}


def test_the_export_has_every_matching_call_not_just_a_page_and_is_audited(app, line, clock,
                                                                             supervisor):
    number = a_number()
    calls = [billing_call(line, number, at=i * 120) for i in range(3)]
    held = hung_up_on_hold(line, number, at=600)
    logged(app)
    response = supervisor.get("/admin/calls/export.csv", query_string={
        "caller": number, "outcome": "transferred"})
    assert "attachment" in response.headers["Content-Disposition"]
    rows = csv_rows(response)
    assert set(rows) == {c.call_sid for c in calls}  # more than a page; not the held call
    row = rows[calls[0].call_sid]
    assert row["caller"] == "'" + masked(number), "masked, and kept from running as a formula"
    assert row["outcome"] == "transferred" and row["flow"] == "company"
    assert row["started_at"].startswith(
        clock.base.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M")), "in New York time"
    assert held.call_sid not in rows
    [entry] = audit_of(app, supervisor.username, "calls_exported")
    assert entry.data == {"filters": {"caller": number, "outcome": "transferred"},
                          "revealed": False}


def test_the_export_shows_full_numbers_only_to_a_supervisor_who_revealed_them(app, line,
                                                                                supervisor):
    number = a_number()
    call = billing_call(line, number)
    logged(app)
    rows = csv_rows(supervisor.get("/admin/calls/export.csv",
                                   query_string={"caller": number, "reveal": "1"}))
    assert rows[call.call_sid]["caller"] == "'" + number
    [entry] = audit_of(app, supervisor.username, "calls_exported")
    assert entry.data["revealed"] is True
    assert audit_of(app, supervisor.username, "reveal_numbers")[0].target == "calls.csv"


@pytest.mark.parametrize("cell, safe", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+14155550100", "'+14155550100"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("front-desk", "front-desk"), (None, ""),
    (42, "42")])
def test_cells_a_spreadsheet_would_run_as_formulas_are_defused(cell, safe):
    assert csv_safe(cell) == safe
