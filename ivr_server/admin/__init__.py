"""The supervisor and ops pages under /admin: server-rendered, signed-in users only, by role.

Supervisors see calls, timelines, the dashboard and live queues; ops also manage flows;
admins also manage users. One blueprint per concern; all share the guard in auth.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from ..config import Config
from .audit import Audit
from .auth import bp as auth_bp
from .auth import current_user, guard
from .context import AdminServices
from .csrf import csrf_field, csrf_token
from .masking import mask_number
from .roles import allows, parse_roles
from .throttle import LoginThrottle
from .users import UserStore

if TYPE_CHECKING:
    from .. import Services

# Scripts only from this server (no inline script, no CDN); styles also inline, since
# Chart.js and Mermaid style the elements they draw.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


WEBHOOK_PATHS = ("/voice/", "/sms/")


class AdminOnlySessions(SecureCookieSessionInterface):
    """The signed session cookie is for people: Twilio's webhooks never read or set it, so
    they skip building a signer (about 4% of a webhook's CPU)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(WEBHOOK_PATHS):
            return None  # Flask uses a null session, which never sets a cookie
        return super().open_session(app, request)


def init_admin(app: Flask, services: Services) -> None:
    from . import calls_pages, dashboard_pages, flows_pages, users_pages
    from .assets import vendored

    config = services.config
    app.secret_key = secret_key(config)
    app.config.update(
        SESSION_COOKIE_NAME="ivr_admin", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.server.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.admin.session_hours))
    app.session_interface = AdminOnlySessions()
    a = config.admin
    app.extensions["ivr_admin"] = AdminServices(
        ivr=services,
        users=UserStore(services.session_factory, services.clock),
        audit=Audit(services.session_factory, services.clock),
        throttle=LoginThrottle(services.redis, config.redis.key_prefix,
                               a.login_max_failures, a.login_lockout_seconds),
        reveal_roles=parse_roles(a.reveal_numbers_roles),
        page_size=max(1, a.page_size),
        zone=ZoneInfo(a.time_zone),
        assets=vendored(),
    )
    app.before_request(guard)
    app.after_request(_security_headers)
    app.context_processor(_template_context)
    for bp in (auth_bp, calls_pages.bp, dashboard_pages.bp, flows_pages.bp, users_pages.bp):
        app.register_blueprint(bp)
    app.add_template_filter(mask_number, "masked")


def _template_context() -> dict[str, Any]:
    return {"csrf_field": csrf_field, "csrf_token": csrf_token, "user": current_user(),
            "allows": allows}


def _security_headers(response: Response) -> Response:
    if request.path.startswith("/admin"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def secret_key(config: Config) -> str:
    """The configured key, or one generated once in the instance folder (one machine only:
    several web nodes must share IVR_SECRET_KEY, or sessions break between them)."""
    if config.admin.secret_key:
        return config.admin.secret_key
    path = config.instance_dir / "secret_key"
    if not path.exists():
        # Several server processes may start at once: the first link wins, all read it.
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".secret_key.{os.getpid()}")
        temp.write_text(secrets.token_hex(32) + "\n")
        temp.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
        temp.unlink()
    return path.read_text().strip()
