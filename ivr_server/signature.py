"""X-Twilio-Signature checks: the URL Twilio signed is the public one, not what Flask sees."""

from __future__ import annotations

from flask import Request
from twilio.request_validator import RequestValidator


def public_url(request: Request, public_base_url: str) -> str:
    """The URL Twilio requested. With a proxy trusted, ProxyFix has already fixed scheme/host."""
    query = request.query_string.decode("latin-1")
    base = public_base_url.rstrip("/") if public_base_url else request.host_url.rstrip("/")
    path = request.script_root + request.path
    return f"{base}{path}" + (f"?{query}" if query else "")


def is_signed(request: Request, validator: RequestValidator, public_base_url: str) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    params = request.form if request.mimetype == "application/x-www-form-urlencoded" else {}
    try:
        return bool(validator.validate(public_url(request, public_base_url), params, signature))
    except (ValueError, TypeError, UnicodeError):
        return False
