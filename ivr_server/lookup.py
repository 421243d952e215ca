"""Performs the engine's HTTP lookups (a CRM): bounded in time and size, never raising."""

from __future__ import annotations

import json
import time

import requests

from flows.actions import HttpRequest
from flows.events import LookupDone


class HttpLookup:
    def __init__(self, max_timeout: float, max_bytes: int, use_env_proxy: bool = False):
        self.max_timeout, self.max_bytes = max_timeout, max_bytes
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "ivr-server lookup"
        # No proxy variables or ~/.netrc: reading them costs more than the lookup itself on
        # every call, and a CRM is reached directly (set lookup.use_env_proxy to change it).
        self.session.trust_env = use_env_proxy

    def __call__(self, request: HttpRequest) -> LookupDone:
        started = time.perf_counter()
        timeout = min(request.timeout, self.max_timeout)

        def done(ok: bool, **kw: object) -> LookupDone:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            return LookupDone(ok=ok, elapsed_ms=elapsed, **kw)  # type: ignore[arg-type]

        try:
            with self.session.request(request.method, request.url, params=request.params or None,
                                      json=request.body, headers=request.headers or None,
                                      timeout=timeout, stream=True, allow_redirects=False) as resp:
                chunks, size = [], 0
                for chunk in resp.iter_content(8192):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_bytes:
                        return done(False, status=resp.status_code, error="answer too large")
                    if time.perf_counter() - started > timeout:  # a slow drip, not a stall
                        return done(False, status=resp.status_code,
                                    error=f"timed out after {timeout}s")
                body = b"".join(chunks)
                if not 200 <= resp.status_code < 300:
                    return done(False, status=resp.status_code, error=f"HTTP {resp.status_code}")
                data = json.loads(body) if body else None
                return done(True, status=resp.status_code, data=data)
        except requests.Timeout:
            return done(False, error=f"timed out after {timeout}s")
        except (requests.RequestException, ValueError, OSError) as exc:
            return done(False, error=f"{type(exc).__name__}: {exc}"[:200])
