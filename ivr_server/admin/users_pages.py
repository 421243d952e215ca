"""Users (admin role): who may sign in, with which role; create, disable, reset a password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ..models import ROLES
from .auth import current_user, require_role
from .context import admin_services
from .errors import UserError
from .roles import ADMIN, WHAT_EACH_ROLE_ADDS

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")
bp.before_request(require_role(ADMIN))


@bp.get("/")
def users() -> Any:
    a = admin_services()
    return render_template("admin/users.html", users=a.users.all(), roles=ROLES,
                           role_help=WHAT_EACH_ROLE_ADDS,
                           audit=a.audit.recent(limit=30))


@bp.post("/")
def create() -> Any:
    a = admin_services()
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "")
    try:
        a.users.create(username, request.form.get("password", ""), role)
    except UserError as exc:
        flash(f"User not created: {exc}.", "error")
        return redirect(url_for(".users"))
    a.audit.record(current_user().username, "user_created", username, role=role)
    flash(f"User {username} created ({role}).", "success")
    return redirect(url_for(".users"))


@bp.post("/<username>")
def change(username: str) -> Any:
    a = admin_services()
    me = current_user()
    action = request.form.get("action", "")
    try:
        if username == me.username and action in ("disable", "role"):
            raise UserError("you cannot disable yourself or change your own role")
        if action == "disable":
            a.users.set_disabled(username, True)
        elif action == "enable":
            a.users.set_disabled(username, False)
        elif action == "role":
            a.users.set_role(username, request.form.get("role", ""))
        elif action == "password":
            a.users.set_password(username, request.form.get("password", ""))
        else:
            raise UserError(f"unknown action {action!r}")
    except UserError as exc:
        flash(f"{username}: {exc}.", "error")
        return redirect(url_for(".users"))
    a.audit.record(me.username, f"user_{action}", username,
                   **({"role": request.form.get("role")} if action == "role" else {}))
    flash(f"{username}: {'password changed' if action == 'password' else action + 'd'}.",
          "success")
    return redirect(url_for(".users"))
