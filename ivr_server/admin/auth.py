"""Sign-in, sign-out and the guard in front of every page under /admin.

The session cookie is signed (Flask's secret key) and holds only the user's id and a stamp
of their password hash. Each request reloads the user, so disabling someone or changing
their password or role takes effect on their next click, on every web node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from ..models import User
from .context import admin_services
from .csrf import check_csrf, csrf_token
from .roles import SUPERVISOR, allows
from .users import session_stamp

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static")

PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})


def current_user() -> User | None:
    return g.get("admin_user")


def guard() -> Response | None:
    """App-wide before_request: nothing under /admin without a signed-in, enabled user."""
    if not (request.path == "/admin" or request.path.startswith("/admin/")):
        return None
    if request.endpoint == "admin.static":
        return None
    check_csrf()
    g.admin_user = _signed_in_user()
    if g.admin_user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.method == "GET" and not _wants_json():
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        abort(401)
    return None


def _signed_in_user() -> User | None:
    user_id, stamp = session.get("user_id"), session.get("stamp")
    if not isinstance(user_id, int) or not stamp:
        return None
    user = admin_services().users.get(user_id)
    if user is None or user.disabled or session_stamp(user) != stamp:
        session.pop("user_id", None)
        return None
    return user


def require_role(needed: str) -> Callable[[], None]:
    """A blueprint's before_request: signed in (the guard saw to it) with at least `needed`."""

    def check() -> None:
        if request.endpoint in PUBLIC_ENDPOINTS:
            return
        user = current_user()
        if user is None:
            abort(401)
        if not allows(user.role, needed):
            abort(403, description=f"This page needs the {needed} role; you are signed in "
                                   f"as {user.role}.")

    return check


def error_page(exc: HTTPException) -> Any:
    """Errors under /admin as a page in the admin's own layout (JSON for scripts)."""
    if _wants_json():
        return {"error": exc.name, "description": exc.description}, exc.code
    return render_template("admin/error.html", code=exc.code, name=exc.name,
                           description=exc.description), exc.code


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _safe_next(target: str | None) -> str:
    """Only a path on this site under /admin: never an open redirect."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/admin") \
                and not target.startswith("//"):
            return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user() is not None and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    error, status = None, 200
    if request.method == "POST":
        a = admin_services()
        username = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")[:1024]
        address = request.remote_addr or "-"
        wait = a.throttle.locked_for(username, address)
        user = None
        if wait:
            minutes = max(1, round(wait / 60))
            error = (f"Too many failed sign-ins. Try again in {minutes} minute"
                     f"{'s' if minutes != 1 else ''}.")
            status = 429
            a.audit.record(username or None, "login_throttled", address)
        else:
            user = a.users.authenticate(username, password)
            if user is None:
                a.throttle.failed(username, address)
                a.audit.record(username or None, "login_failed", address)
                error, status = "Wrong username or password.", 401
        if user is not None:
            a.throttle.succeeded(username, address)
            session.clear()  # a fresh session (and CSRF token) for the signed-in user
            session.permanent = True
            session["user_id"], session["stamp"] = user.id, session_stamp(user)
            csrf_token()  # the new session's own token
            a.audit.record(user.username, "login", address)
            return redirect(_safe_next(request.form.get("next")))
    return render_template("admin/login.html", error=error,
                           next=request.values.get("next", "")), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    user = current_user()
    if user is not None:
        admin_services().audit.record(user.username, "logout")
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("admin.login"))


@bp.route("/")
def index() -> Response:
    return redirect(url_for("admin_dashboard.dashboard"))


bp.before_request(require_role(SUPERVISOR))  # login is let through by the guard's early return

