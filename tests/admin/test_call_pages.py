"""The Calls pages as a supervisor uses them: real simulated calls through the demo flow, then
the list (filters, pages, masked numbers), the CSV export and one call's timeline and story.

The test database outlives runs and is shared: every test dials from numbers of its own on
a day of its own (a random Tuesday decades away) and only looks for the calls it made.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import random
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr_server.admin.call_queries import csv_safe
from ivr_server.models import AuditEvent
from ivr_server.simulator import SimulatedCall
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport

from ..conftest import AUTH_TOKEN, PUBLIC_URL, sign
from .conftest import AdminClient

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


# -- one call --------------------------------------------------------------------------------

def test_a_call_page_shows_each_prompt_key_and_route_and_the_story(app, line, supervisor):
    call = billing_call(line, a_number())
    logged(app)
    page = supervisor.get(f"/admin/calls/{call.call_sid}")
    steps = timeline_of(page)
    assert ("prompt", "“Please key in your eight digit account number.”") in steps
    assert ("key", "Pressed 1 → billing") in steps
    assert ("invalid", "Pressed ****5678, refused") in steps
    assert ("collected", "Account number: ****5674") in steps
    assert ("route", "→ billing_desk (valid entry)") in steps
    assert ("transfer", "To +15005550006") in steps
    kinds = [k for k, _ in steps]
    assert kinds.index("key") < kinds.index("invalid") < kinds.index("transfer")
    assert re.search(r'<span class="at"[^>]*>\+0:\d\d</span>', page.text)
    assert story_of(page) == ("Pressed 1 (billing) → account number refused → account "
                              "number entered → transferred to billing desk, talked 1 min "
                              "→ transferred.")


def test_a_call_page_compares_the_wait_predicted_with_the_wait_it_had(app, line, supervisor):
    call = hung_up_on_hold(line, a_number(), wait=400)
    logged(app)
    page = supervisor.get(f"/admin/calls/{call.call_sid}")
    steps = dict(timeline_of(page))
    assert re.fullmatch(r"front-desk: predicted \d+ (s|min)( \d+ s)?–\d+ min( \d+ s)? "
                        r"\(median .+\)", steps["queue_joined"])
    assert "caller hung up; waited 6 min" in steps["queue_result"]
    assert "predicted" in steps["queue_result"]
    texts = [text for kind, text in timeline_of(page) if kind == "sms_sent"]
    assert texts[0].startswith("“You're number 1 in line for Acme. Expected wait: ")
    assert texts[0].endswith("(wait estimate, queued)")
    assert "sms_queued" not in steps, "the text itself is listed, not twice"
    story = story_of(page)
    assert re.fullmatch(r"Pressed 0 \(agent\) → joined queue front-desk, told about \d+–\d+ "
                        r"min, waited 6 min \d+ s, hung up → abandoned; callback booked for "
                        r"\d\d:\d\d, not called yet\.", story), story
    assert 'id="call-callbacks"' in page.text and 'data-state="scheduled"' in page.text


def test_a_call_page_shows_a_callback_asked_for_on_hold(app, line, supervisor):
    call = line(a_number())
    call.press("0")
    call.wait(100)
    call.press("1")  # the callback offer
    call.press("1")  # at this number
    logged(app)
    page = supervisor.get(f"/admin/calls/{call.call_sid}")
    assert 'class="badge callback"' in page.text
    assert ("callback_accepted", "Pressed 1") in timeline_of(page)
    assert re.search(r"waited 1 min \d+ s, asked for a callback → pressed 1 \(this number\) → "
                     r"callback; callback booked for \d\d:\d\d, not called yet\.",
                     story_of(page)), story_of(page)


def test_a_call_page_shows_the_survey_asked_by_text_and_its_answer(app, line, supervisor,
                                                                   clock):
    number = a_number()
    call = billing_call(line, number)
    logged(app)
    reply = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32,
             "From": number, "To": COMPANY_LINE, "Body": "4"}
    app.test_client().post("/sms/incoming", data=reply, base_url=PUBLIC_URL, headers={
        "X-Twilio-Signature": sign(PUBLIC_URL + "/sms/incoming", reply)})
    logged(app)
    page = supervisor.get(f"/admin/calls/{call.call_sid}")
    steps = timeline_of(page)
    assert any(k == "sms_sent" and "(survey question, queued)" in t for k, t in steps)
    assert ("sms_received", "“4”") in steps
    assert ("survey_answer", "Scored the call 4 out of 5") in steps
    assert 'id="call-survey"' in page.text
    assert story_of(page).endswith("→ transferred; rated the call 4/5.")


def test_a_call_after_hours_tells_its_story_in_a_few_words(app, line, clock, supervisor):
    clock.base += dt.timedelta(hours=9)  # 19:00 or 20:00 in New York
    call = line(a_number())
    logged(app)
    page = supervisor.get(f"/admin/calls/{call.call_sid}")
    assert story_of(page) == "Called outside opening hours → closed."


def test_an_unknown_call_is_a_not_found_page(supervisor):
    page = supervisor.get("/admin/calls/CA" + "0" * 31 + "x")
    assert page.status_code == 404 and "Call not found" in page.text
