"""PLACEHOLDER: replaced by the dashboard helper."""

from __future__ import annotations

from flask import Blueprint

from .auth import require_role
from .roles import SUPERVISOR

bp = Blueprint("admin_dashboard", __name__, url_prefix="/admin")
bp.before_request(require_role(SUPERVISOR))


@bp.get("/dashboard")
def dashboard() -> str:
    return "dashboard"


@bp.get("/queues")
def queues() -> str:
    return "queues"
