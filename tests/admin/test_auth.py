"""Signing in to /admin: roles, throttling, CSRF, sessions that end when they should, and
nothing under /admin reachable signed out."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ivr_server.cli import main

from .conftest import PASSWORD, login, unique_name


def _admin_urls(app) -> list[tuple[str, set[str]]]:  # noqa: ANN001
    """Every /admin route but the sign-in page and static files, with made-up arguments."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in ("admin.login",
                                                                   "admin.static"):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", "x")
            for conv in ("int", "string", "path"):
                path = path.replace(f"<{conv}:{arg}>", "1" if conv == "int" else "x")
        urls.append((path, set(rule.methods or ()) - {"HEAD", "OPTIONS"}))
    return urls


def test_nothing_under_admin_is_reachable_signed_out(app):  # noqa: ANN001
    client = app.test_client()
    urls = _admin_urls(app)
    assert len(urls) >= 8  # the test would pass vacuously if the pages were not registered
    for path, methods in urls:
        for method in methods:
            response = client.open(path, method=method)
            if method == "GET":
                assert response.status_code == 302, path
                assert response.headers["Location"].startswith("/admin/login"), path
            else:  # a POST without a session has no CSRF token either
                assert response.status_code in (400, 401), (method, path)


def test_signed_out_json_requests_get_401_not_a_login_page(app):  # noqa: ANN001
    response = app.test_client().get("/admin/queues.json",
                                     headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_sign_in_takes_you_where_you_were_going(app, create_user):  # noqa: ANN001
    name = create_user("supervisor")
    client = app.test_client()
    page = client.get("/admin/calls/")
    assert page.headers["Location"] == "/admin/login?next=/admin/calls/"
    client.get(page.headers["Location"])
    with client.session_transaction() as session:
        token = session["csrf_token"]
    response = client.post("/admin/login", data={"username": name, "password": PASSWORD,
                                                 "next": "/admin/calls/", "csrf_token": token})
    assert response.headers["Location"] == "/admin/calls/"
    assert client.get("/admin/calls/").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin",
                                    "/voice/incoming", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_the_admin_pages(app, create_user, target):  # noqa: ANN001
    name = create_user("supervisor")
    client = app.test_client()
    client.get("/admin/login")
    with client.session_transaction() as session:
        token = session["csrf_token"]
    response = client.post("/admin/login", data={"username": name, "password": PASSWORD,
                                                 "next": target, "csrf_token": token})
    assert response.headers["Location"] == "/admin/"


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(app, create_user):  # noqa: ANN001
    name = create_user("supervisor")
    wrong_password = login(app.test_client(), name, "not the password at all")
    no_such_user = login(app.test_client(), unique_name("nobody"), PASSWORD)
    for response in (wrong_password, no_such_user):
        assert response.status_code == 401
        assert "Wrong username or password." in response.text


def test_repeated_failures_lock_sign_in_even_with_the_right_password(app, create_user):  # noqa: ANN001
    name = create_user("supervisor")
    limit = app.extensions["ivr_admin"].throttle.max_failures
    for _ in range(limit):
        assert login(app.test_client(), name, "wrong wrong wrong").status_code == 401
    locked = login(app.test_client(), name, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.text
    audit = app.extensions["ivr_admin"].audit.recent(action="login_throttled")
    assert any(e.username == name for e in audit)


def test_each_role_sees_only_its_pages(signed_in):  # noqa: ANN001
    supervisor, ops, admin = signed_in("supervisor"), signed_in("ops"), signed_in("admin")
    assert supervisor.get("/admin/calls/").status_code == 200
    assert supervisor.get("/admin/dashboard").status_code == 200
    refused = supervisor.get("/admin/flows/")
    assert refused.status_code == 403
    assert "needs the ops role" in refused.text
    assert ops.get("/admin/flows/").status_code == 200
    assert ops.get("/admin/users/").status_code == 403
    assert admin.get("/admin/users/").status_code == 200
    assert admin.get("/admin/flows/").status_code == 200


def test_a_form_posted_without_its_csrf_token_is_refused(signed_in):  # noqa: ANN001
    admin = signed_in("admin")
    name = unique_name("forged")
    forged = admin.client.post("/admin/users/", data={"username": name, "password": PASSWORD,
                                                      "role": "admin"})
    assert forged.status_code == 400
    assert "did not come from this site" in forged.text
    assert admin.client.application.extensions["ivr_admin"].users.by_name(name) is None


def test_disabling_a_user_ends_their_session_on_the_next_click(app, signed_in):  # noqa: ANN001
    supervisor, admin = signed_in("supervisor"), signed_in("admin")
    assert supervisor.get("/admin/calls/").status_code == 200
    admin.post(f"/admin/users/{supervisor.username}", {"action": "disable"})
    assert supervisor.get("/admin/calls/").status_code == 302
    assert login(app.test_client(), supervisor.username, PASSWORD).status_code == 401


def test_a_new_password_signs_out_the_users_other_sessions(app, signed_in):  # noqa: ANN001
    supervisor = signed_in("supervisor")
    app.extensions["ivr_admin"].users.set_password(supervisor.username, "a brand new secret")
    assert supervisor.get("/admin/calls/").status_code == 302
    assert login(app.test_client(), supervisor.username, "a brand new secret").status_code == 302


def test_signing_out_ends_the_session(signed_in):  # noqa: ANN001
    supervisor = signed_in("supervisor")
    assert supervisor.post("/admin/logout").status_code == 302
    assert supervisor.get("/admin/calls/").status_code == 302


def test_admin_pages_send_a_strict_content_security_policy(signed_in):  # noqa: ANN001
    response = signed_in("supervisor").get("/admin/calls/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_session_cookie_is_http_only_and_same_site(app, create_user):  # noqa: ANN001
    response = login(app.test_client(), create_user("supervisor"), PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "ivr_admin=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the test server's public URL is https


def test_admins_manage_users_on_the_users_page(app, signed_in):  # noqa: ANN001
    admin = signed_in("admin")
    name = unique_name("new")
    created = admin.post("/admin/users/", {"username": name, "password": PASSWORD,
                                           "role": "ops"}, follow_redirects=True)
    assert f"User {name} created (ops)." in created.text
    weak = admin.post("/admin/users/", {"username": unique_name("weak"), "password": "short",
                                        "role": "ops"}, follow_redirects=True)
    assert "a password needs at least 10 characters" in weak.text
    admin.post(f"/admin/users/{name}", {"action": "role", "role": "supervisor"})
    assert app.extensions["ivr_admin"].users.by_name(name).role == "supervisor"
    myself = admin.post(f"/admin/users/{admin.username}", {"action": "disable"},
                        follow_redirects=True)
    assert "you cannot disable yourself" in myself.text


def test_users_are_created_and_disabled_from_the_command_line(app, config, tmp_path):  # noqa: ANN001
    toml = tmp_path / "config.toml"
    toml.write_text(f'[database]\nurl = "{config.database_url}"\n'
                    f'[server]\ninstance_path = "{tmp_path / "instance"}"\n')
    name = unique_name("cli")
    runner = CliRunner()
    created = runner.invoke(main, ["--config", str(toml), "users", "create", name, "--role",
                                   "ops", "--password-stdin"], input=PASSWORD + "\n")
    assert created.exit_code == 0, created.output
    assert f"created {name} (ops)" in created.output
    assert login(app.test_client(), name, PASSWORD).status_code == 302
    again = runner.invoke(main, ["--config", str(toml), "users", "create", name, "--role",
                                 "ops", "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 1 and "already exists" in again.output
    disabled = runner.invoke(main, ["--config", str(toml), "users", "disable", name])
    assert disabled.exit_code == 0 and f"{name}: disabled" in disabled.output
    assert login(app.test_client(), name, PASSWORD).status_code == 401
    listed = runner.invoke(main, ["--config", str(toml), "users", "list"])
    assert f"{name}" in listed.output and "disabled" in listed.output
