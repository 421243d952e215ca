"""CSRF protection for every form under /admin: a per-session token, checked on each POST.

The token lives in the signed session cookie and goes out in a hidden field (or the
X-CSRF-Token header for scripts); a POST without the matching value gets 400.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session
from markupsafe import Markup, escape

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    token = session.get(FIELD)
    if not token:
        token = session[FIELD] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(csrf_token())}">')


def check_csrf() -> None:
    """Abort with 400 unless this unsafe request carries the session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(FIELD)
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not expected or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, description="This form has expired or did not come from this site. "
                               "Go back, reload the page and try again.")
