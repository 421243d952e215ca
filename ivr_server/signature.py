"""X-Twilio-Signature checks: the URL Twilio signed is the public one, not what Flask sees
(and the bearer token of the routes Twilio does not call).

Twilio signs base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value,
sorted by name)). It may sign the URL with or without an explicit default port, so a
mismatch is retried with the port toggled, as Twilio's own helpers do.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from flask import Request

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class Signer:
    """Computes and checks Twilio request signatures for one auth token."""

    def __init__(self, auth_token: str):
        self._key = auth_token.encode()

    def sign(self, url: str, params: Mapping[str, str] | None) -> str:
        parts = [url]
        if params:
            getlist = getattr(params, "getlist", None)
            for name in sorted(set(params)):
                values = getlist(name) if getlist else [params[name]]
                if len(values) == 1:  # the usual case: no set or sort to make
                    parts.append(name + values[0])
                else:
                    parts.extend(name + value for value in sorted(set(values)))
        digest = hmac.digest(self._key, "".join(parts).encode("utf-8"), "sha1")
        return base64.b64encode(digest).decode("ascii")

    def valid(self, url: str, params: Mapping[str, str] | None, signature: str) -> bool:
        if not signature:
            return False
        for candidate in (url, _toggle_port(url)):
            if candidate and hmac.compare_digest(self.sign(candidate, params), signature):
                return True
        return False


def _toggle_port(url: str) -> str | None:
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if parts.port is None:
        netloc = f"{prefix}{host}:{default}"
    elif parts.port == default:
        netloc = f"{prefix}{host}"
    else:
        return None
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def websocket_url(url: str) -> str:
    """The ws(s):// twin of an http(s):// URL (and the other way round with `http_url`)."""
    return url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def http_url(url: str) -> str:
    return url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def public_url(request: Request, public_base_url: str, *, websocket: bool = False) -> str:
    """The URL Twilio requested. With a proxy trusted, ProxyFix has already fixed scheme/host."""
    query = request.query_string.decode("latin-1")
    base = public_base_url.rstrip("/") if public_base_url else request.host_url.rstrip("/")
    if websocket:  # ws(s)://, whatever scheme the handshake arrived on behind a proxy
        base = websocket_url(base)
    path = request.script_root + request.path
    return f"{base}{path}" + (f"?{query}" if query else "")


def is_signed(request: Request, signer: Signer, public_base_url: str, *,
              websocket: bool = False) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    params = request.form if request.mimetype == "application/x-www-form-urlencoded" else None
    try:
        return signer.valid(public_url(request, public_base_url, websocket=websocket), params,
                            signature)
    except (ValueError, TypeError, UnicodeError):
        return False


def bearer_matches(authorization: str, token: str) -> bool:
    """`Authorization: Bearer <token>` (RFC 6750: the scheme word in any case) carrying this
    token, compared in constant time; a bare token or another scheme is not it. For the
    routes Twilio does not call (the agents API, /metrics)."""
    scheme, _, credentials = authorization.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(),
                                                              token.encode())
