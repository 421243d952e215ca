"""One call's page as a supervisor reads it: every prompt, key, route, the wait predicted
and had, a callback and a survey, and the story in a few words."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from ..conftest import PUBLIC_URL, sign
from .call_pages_setup import *  # noqa: F403 - the fixtures
from .call_pages_setup import (
    COMPANY_LINE,
    a_number,
    billing_call,
    hung_up_on_hold,
    logged,
    story_of,
    timeline_of,
)


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
