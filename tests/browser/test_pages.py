"""The supervisor and ops pages in a real browser: a real simulated call's timeline, the
dashboard's charts, the live queue view refreshing itself, and a flow published and rolled
back. Screenshots land in test-artifacts/browser/."""

from __future__ import annotations

import random
import re
import uuid

from ..conftest import DEMO_FLOWS
from .conftest import LiveServer, Page

OLD_PROMPT = "For billing, press 1."
NEW_PROMPT = "For anything about bills or payments, press 1."


def a_number() -> str:
    return f"+1628{random.randrange(2, 10)}{random.randrange(10**6):06d}"


def test_supervisor_filters_calls_and_reads_why_a_caller_ended_where_they_did(
        page: Page, live_server: LiveServer):
    number = a_number()
    call = live_server.call(number)
    call.press("1")           # billing
    call.press("12345674")    # a valid account number
    call.answer_dial()        # the billing team takes the call
    other = live_server.call(a_number())
    other.hangup()
    live_server.flush_call_log()

    page.sign_in(live_server.user("supervisor"))
    page.go("/admin/calls/")
    page.page.fill("#filter-caller", number)
    page.page.click("#filter-apply")
    rows = page.page.locator("#calls-table tr[data-call-sid]")
    rows.first.wait_for()
    assert rows.count() == 1
    assert rows.first.get_attribute("data-call-sid") == call.call_sid
    caller = rows.first.locator(".caller").inner_text()
    assert number not in caller and caller.endswith(number[-2:])  # masked by default
    assert rows.first.get_attribute("data-outcome") == "transferred"
    page.shot("calls-filtered")

    page.page.click("#reveal-numbers")
    page.page.wait_for_selector("#calls-table[data-revealed='true']")
    assert number in page.page.locator("#calls-table tr[data-call-sid] .caller").inner_text()
    page.shot("calls-revealed")

    page.page.locator("#calls-table a.call-link").first.click()
    page.page.wait_for_selector("#call-story")
    story = page.page.locator("#call-story").inner_text()
    assert "Pressed 1 (billing)" in story and "transferred" in story.lower()
    timeline = page.page.locator("#call-timeline").inner_text()
    assert OLD_PROMPT in timeline            # the prompt the caller heard
    assert "billing" in timeline             # the key they pressed and what it meant
    kinds = page.page.locator("#call-timeline > li").evaluate_all(
        "items => items.map(i => i.dataset.kind)")
    assert kinds.index("prompt") < kinds.index("key") < kinds.index("transfer")
    page.shot("call-timeline")


def test_dashboard_draws_its_charts(page: Page, live_server: LiveServer):
    for _ in range(2):  # calls of this period, so the charts have something to draw
        call = live_server.call(a_number())
        call.press("0")
        call.taken_by_agent(60)
    live_server.flush_call_log()
    page.sign_in(live_server.user("supervisor"))
    page.go("/admin/dashboard")
    page.page.wait_for_selector("#chart-calls[data-rendered='1']")
    page.page.wait_for_selector("#chart-wait[data-rendered='1']")
    calls = page.page.locator(".tile[data-metric=calls] .value").inner_text()
    assert int(calls.replace(",", "")) >= 2
    box = page.page.locator("#chart-calls").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    page.shot("dashboard")


def test_live_queue_view_refreshes_by_itself(page: Page, live_server: LiveServer):
    page.sign_in(live_server.user("supervisor"))
    page.go("/admin/queues")
    cell = page.page.locator("tr[data-queue='front-desk'] td[data-field=waiting]")
    cell.wait_for()
    before = int(cell.inner_text())
    caller = live_server.call(a_number())
    caller.press("0")  # joins the front desk's line and stays on hold
    # No reload: the page fetches /admin/queues.json every 5 s by itself.
    page.page.locator(f"tr[data-queue='front-desk'] td[data-field=waiting]:text-is("
                      f"'{before + 1}')").wait_for(timeout=15_000)
    assert page.page.locator("#updated-at").inner_text().startswith("updated")
    page.shot("live-queues")
    caller.hangup()


def test_ops_publishes_a_flow_is_refused_a_broken_one_and_rolls_back(
        page: Page, live_server: LiveServer):
    name = f"browser-{uuid.uuid4().hex[:8]}"
    path = live_server.flows_dir / f"{name}.yaml"
    path.write_text((DEMO_FLOWS / "company.yaml").read_text()
                    .replace("flow: company", f"flow: {name}"))
    registry = live_server.app.extensions["ivr"].registry
    registry.refresh(force=True)
    first = registry.live_version(name)

    page.sign_in(live_server.user("ops"))
    page.go(f"/admin/flows/{name}")
    page.page.wait_for_selector("#flow-graph[data-rendered='1']")
    assert page.page.locator("#flow-graph svg").count() == 1
    page.shot("flow-graph")

    page.page.click("#publish-link")
    source = page.page.locator("#flow-source-input")
    source.fill(source.input_value().replace(OLD_PROMPT, NEW_PROMPT))
    page.page.click("#publish-button")
    page.page.wait_for_selector(".flash.success")
    assert f"{name} is live at version" in page.page.locator(".flash.success").inner_text()
    second = registry.live_version(name)
    assert second != first and NEW_PROMPT in path.read_text()
    page.shot("flow-published")

    page.page.click("#publish-link")
    page.page.locator("#flow-source-input").fill(
        path.read_text().replace("type: menu", "type: menuu", 1))
    page.page.click("#publish-button")
    error = page.page.locator("#publish-error[data-kind=refused]")
    error.wait_for()
    assert re.search(rf"{re.escape(path.name)}:\d+: ", error.inner_text())
    assert registry.live_version(name) == second  # the running version stays live
    page.problems.clear()  # the browser logs the 422 answer itself
    page.shot("flow-refused")

    page.go(f"/admin/flows/{name}")
    page.page.locator(f"#flow-history tr[data-version='{first}'] button",
                      has_text="Make live").click()  # the confirm dialog is accepted
    page.page.wait_for_selector(".flash.success")
    assert page.page.locator("#live-version").inner_text() == first
    assert registry.live_version(name) == first and OLD_PROMPT in path.read_text()
    page.shot("flow-rolled-back")
