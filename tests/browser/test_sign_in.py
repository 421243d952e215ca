"""Signing in to the admin pages in a real browser, and being refused."""

from __future__ import annotations

import uuid

from .conftest import PASSWORD, LiveServer, Page


def test_signed_out_visitor_is_sent_to_the_sign_in_page(page: Page):
    page.go("/admin/calls/")
    assert page.page.url.endswith("/admin/login?next=/admin/calls/")
    assert page.page.locator("h1").inner_text() == "Sign in"
    page.shot("signed-out")


def test_supervisor_signs_in_and_lands_where_they_were_going(page: Page,
                                                              live_server: LiveServer):
    name = live_server.user("supervisor")
    page.go("/admin/calls/")
    page.page.fill("input[name=username]", name)
    page.page.fill("input[name=password]", PASSWORD)
    page.page.click("button[type=submit]")
    page.page.wait_for_url("**/admin/calls/")
    assert name in page.page.locator("header .who").inner_text()
    page.shot("calls-after-sign-in")


def test_a_wrong_password_shows_an_error_and_keeps_you_out(page: Page, live_server: LiveServer):
    page.sign_in(live_server.user("supervisor"), "not the password")
    assert page.page.get_by_role("alert").inner_text() == "Wrong username or password."
    page.go("/admin/dashboard")
    assert "/admin/login" in page.page.url
    page.problems.clear()  # the browser logs the 401 answer itself as a console error
    page.shot("wrong-password")


def test_supervisor_is_refused_the_flows_page(page: Page, live_server: LiveServer):
    page.sign_in(live_server.user("supervisor"))
    assert page.page.get_by_role("link", name="Flows").count() == 0
    response = page.go("/admin/flows/")
    assert response.status == 403
    assert "This page needs the ops role" in page.page.content()
    page.problems.clear()  # the 403 itself is logged as a console error
    page.shot("supervisor-refused-flows")


def test_signing_out_returns_to_the_sign_in_page(page: Page, live_server: LiveServer):
    page.sign_in(live_server.user("ops"))
    page.page.get_by_role("button", name="Sign out").click()
    page.page.wait_for_url("**/admin/login")
    assert "You are signed out." in page.page.content()
    page.go("/admin/dashboard")
    assert "/admin/login" in page.page.url


def test_admin_creates_a_user_who_can_then_sign_in(page: Page, live_server: LiveServer):
    page.sign_in(live_server.user("admin"))
    page.page.get_by_role("link", name="Users").click()
    name = f"new-{uuid.uuid4().hex[:8]}"
    form = page.page.locator("form[action$='/admin/users/']")
    form.locator("input[name=username]").fill(name)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("select[name=role]").select_option("supervisor")
    form.get_by_role("button", name="Create").click()
    page.page.wait_for_selector(".flash.success")
    assert f"User {name} created (supervisor)." in page.page.locator(".flash.success").inner_text()
    page.shot("users")
    page.page.get_by_role("button", name="Sign out").click()
    page.sign_in(name)
    assert name in page.page.locator("header .who").inner_text()
    assert page.page.get_by_role("link", name="Users").count() == 0
