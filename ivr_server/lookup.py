"""Performs the engine's HTTP lookups (a CRM): bounded in time and size, never raising.

urllib3 directly, with one pool of kept-alive connections per CRM host: a lookup happens
inside a caller's turn, and requests' layers on top cost more CPU than the round trip. A CRM
that keeps failing is skipped for a while (lookup_breaker.py).
"""

from __future__ import annotations

import json
import time
import urllib.request
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, TimeoutError

from flows.actions import HttpRequest
from flows.events import LookupDone

from .lookup_breaker import CircuitBreaker

USER_AGENT = "ivr-server lookup"


class HttpLookup:
    def __init__(self, max_timeout: float, max_bytes: int, use_env_proxy: bool = False,
                 breaker: CircuitBreaker | None = None):
        self.max_timeout, self.max_bytes = max_timeout, max_bytes
        self.breaker = breaker
        # No proxy variables by default: a CRM is reached directly (lookup.use_env_proxy
        # routes through HTTP(S)_PROXY, honouring NO_PROXY).
        self.use_env_proxy = use_env_proxy
        self.pool = urllib3.PoolManager(num_pools=16, maxsize=16, retries=False,
                                        headers={"User-Agent": USER_AGENT})
        self._proxies: dict[str, urllib3.ProxyManager] = {}

    def __call__(self, request: HttpRequest) -> LookupDone:
        if self.breaker is None:
            return self._fetch(request)
        parts = urlsplit(request.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        skipped = self.breaker.allow(origin)
        if skipped:
            return LookupDone(ok=False, error=skipped, elapsed_ms=0.0)
        healthy = False
        try:
            answer = self._fetch(request)
            # The CRM answered, even "not found": it is up. Timeouts, refused connections,
            # 5xx and 429 (slow down) count against it.
            healthy = answer.status is not None and answer.status < 500 \
                and answer.status != 429 and not (answer.error or "").startswith("timed out")
            return answer
        finally:
            self.breaker.record(origin, healthy)

    def _fetch(self, request: HttpRequest) -> LookupDone:
        started = time.perf_counter()
        timeout = min(request.timeout, self.max_timeout)

        def done(ok: bool, **kw: object) -> LookupDone:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            return LookupDone(ok=ok, elapsed_ms=elapsed, **kw)  # type: ignore[arg-type]

        url, headers = request.url, {"User-Agent": USER_AGENT, **(request.headers or {})}
        if request.params:
            url += ("&" if urlsplit(url).query else "?") + urlencode(request.params, doseq=True)
        body = None
        if request.body is not None:
            body = json.dumps(request.body).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            resp = self._manager(url).request(
                request.method, url, body=body, headers=headers, redirect=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout), preload_content=False)
        except TimeoutError:
            return done(False, error=f"timed out after {timeout}s")
        except (HTTPError, ValueError, OSError) as exc:
            return done(False, error=f"{type(exc).__name__}: {exc}"[:200])
        try:
            chunks, size = [], 0
            for chunk in resp.stream(8192):
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_bytes:
                    return done(False, status=resp.status, error="answer too large")
                if time.perf_counter() - started > timeout:  # a slow drip, not a stall
                    return done(False, status=resp.status, error=f"timed out after {timeout}s")
            if not 200 <= resp.status < 300:
                return done(False, status=resp.status, error=f"HTTP {resp.status}")
            data = json.loads(b"".join(chunks) or b"null")
            return done(True, status=resp.status, data=data)
        except TimeoutError:
            return done(False, status=resp.status, error=f"timed out after {timeout}s")
        except (HTTPError, ValueError, OSError) as exc:
            return done(False, status=resp.status, error=f"{type(exc).__name__}: {exc}"[:200])
        finally:
            resp.release_conn()

    def _manager(self, url: str) -> urllib3.PoolManager:
        """The direct pool, or the environment's proxy for this URL when asked to use it."""
        if not self.use_env_proxy:
            return self.pool
        parts = urlsplit(url)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
            return self.pool
        if proxy not in self._proxies:
            self._proxies[proxy] = urllib3.ProxyManager(proxy, retries=False,
                                                        headers={"User-Agent": USER_AGENT})
        return self._proxies[proxy]
