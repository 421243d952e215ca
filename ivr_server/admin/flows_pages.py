"""PLACEHOLDER: replaced by the flows helper."""

from __future__ import annotations

from flask import Blueprint

from .auth import require_role
from .roles import OPS

bp = Blueprint("admin_flows", __name__, url_prefix="/admin/flows")
bp.before_request(require_role(OPS))


@bp.get("/")
def flows() -> str:
    return "flows"
