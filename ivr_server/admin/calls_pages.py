"""PLACEHOLDER: replaced by the calls helper."""

from __future__ import annotations

from flask import Blueprint

from .auth import require_role
from .roles import SUPERVISOR

bp = Blueprint("admin_calls", __name__, url_prefix="/admin/calls")
bp.before_request(require_role(SUPERVISOR))


@bp.get("/")
def calls() -> str:
    return "calls"
