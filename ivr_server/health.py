"""Probes and metrics for whoever runs the server: /healthz, /readyz and /metrics.

- /healthz (liveness): the process answers. No I/O, so a Redis outage never gets healthy
  processes restarted.
- /readyz (readiness): Redis answers PING, the database SELECT 1, a flow is live, and the
  speech model (when one is configured) is loaded in this process; the first probe starts
  loading it. Each check runs on its own thread and counts as failed after
  [metrics] readiness_timeout seconds; at most one run per check is in flight, so a hung
  dependency can neither hang the probe nor pile up threads. `?exclude=<check>` leaves a
  check out: a load balancer's probe excludes the shared Redis and database (README).
- /metrics (Prometheus): open to scrapers on this machine (loopback, not through a proxy),
  or to anyone with "Authorization: Bearer <[metrics] token>" when a token is set.

None of these is a Twilio webhook, so none checks X-Twilio-Signature; each has the access
rule above instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from prometheus_client.exposition import choose_encoder
from sqlalchemy import text

from . import metrics
from .json_logs import install_request_context
from .metrics_collectors import BacklogCollector, QueueCollector
from .signature import bearer_matches

log = logging.getLogger("ivr_server.health")
bp = Blueprint("observability", __name__)
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


class NotReady(Exception):
    """A check ran and the answer is no (no live flow, model still loading)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


class _Check:
    """One readiness check, run on a daemon thread, never more than one run at a time."""

    def __init__(self, name: str, run: Callable[[], str]) -> None:
        self.name, self.run = name, run
        self._lock = threading.Lock()
        self._running: Future[str] | None = None
        self._last_ok: bool | None = None

    def start(self) -> Future[str]:
        with self._lock:
            if self._running is None or self._running.done():
                future: Future[str] = Future()
                future.set_running_or_notify_cancel()
                threading.Thread(target=self._work, args=(future,), daemon=True,
                                 name=f"readyz-{self.name}").start()
                self._running = future
            return self._running

    def _work(self, future: Future[str]) -> None:
        try:
            future.set_result(self.run())
        except BaseException as exc:  # noqa: BLE001 - every failure is the check's answer
            future.set_exception(exc)

    def result(self, future: Future[str], timeout: float) -> CheckResult:
        try:
            result = CheckResult(self.name, True, future.result(timeout=max(0.0, timeout)))
        except FutureTimeout:
            result = CheckResult(self.name, False, "no answer in time")
        except NotReady as exc:
            result = CheckResult(self.name, False, str(exc))
        except Exception as exc:  # noqa: BLE001 - named by type only: probes are public
            log.debug("readiness check %s failed", self.name, exc_info=True)
            result = CheckResult(self.name, False, f"error ({type(exc).__name__})")
        if result.ok != self._last_ok:  # log changes, not every probe
            (log.info if result.ok else log.warning)("readiness: %s %s: %s", self.name,
                                                     "ok" if result.ok else "failing",
                                                     result.detail)
            self._last_ok = result.ok
        return result


class Readiness:
    """The checks of one app; `run()` answers within `timeout` seconds whatever hangs."""

    def __init__(self, checks: dict[str, Callable[[], str]], timeout: float) -> None:
        self.checks = [_Check(name, run) for name, run in checks.items()]
        self.timeout = timeout

    def run(self, exclude: Collection[str] = ()) -> list[CheckResult]:
        deadline = time.monotonic() + self.timeout
        started = [(check, check.start()) for check in self.checks if check.name not in exclude]
        return [check.result(future, deadline - time.monotonic()) for check, future in started]


class SpeechWarmup:
    """Ready once the vosk model is loaded here; the first probe starts the load (seconds,
    hundreds of MB) on a thread, and a failed load is tried again by a later probe."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    def check(self) -> str:
        if self.model.loaded:
            return "model loaded"
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._load, daemon=True,
                                                name="speech-model-load")
                self._thread.start()
        raise NotReady(f"model not loaded ({self._error})" if self._error else
                       "model loading")

    def _load(self) -> None:
        try:
            self.model.load()
            self._error = None
        except Exception as exc:  # noqa: BLE001 - reported by the next probe
            log.error("speech model could not be loaded: %s", exc)
            self._error = type(exc).__name__


def readiness_checks(services: Any) -> dict[str, Callable[[], str]]:
    def redis_check() -> str:
        services.redis.ping()
        return "PONG"

    def database_check() -> str:
        with services.session_factory() as db:
            db.execute(text("SELECT 1"))
        return "SELECT 1"

    def flows_check() -> str:
        live = services.registry.loaded()  # webhooks keep them fresh; no Redis here
        if not live:
            raise NotReady("no live flow")
        return f"{len(live)} live"

    checks = {"redis": redis_check, "database": database_check, "flows": flows_check}
    if services.speech is not None:
        checks["speech"] = SpeechWarmup(services.speech.model).check
    return checks


# -- routes --------------------------------------------------------------------------------


@bp.get("/healthz")
def healthz() -> Response:
    return Response("ok\n", 200, mimetype="text/plain", headers={"Cache-Control": "no-store"})


@bp.get("/readyz")
def readyz() -> Response:
    """`?exclude=redis&exclude=database` (as Kubernetes' own /readyz): what a load balancer
    asks, so a Redis or database outage, which every node shares and which callers get
    through on the safe path, does not take every node out of its rotation at once."""
    exclude = set(request.args.getlist("exclude"))
    readiness = current_app.extensions["ivr_observability"].readiness
    unknown = sorted(exclude - {check.name for check in readiness.checks})
    if unknown:  # a typo must not quietly keep the check it meant to leave out
        response = jsonify(error=f"no such check: {', '.join(unknown)[:200]}",
                           checks=sorted(check.name for check in readiness.checks))
        response.status_code = 400
        return response
    results = readiness.run(exclude)
    failing = [r.name for r in results if not r.ok]
    body = {"status": "not ready" if failing else "ready", "failing": failing,
            "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results},
            "excluded": sorted(exclude)}
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics_page() -> Response:
    obs = current_app.extensions["ivr_observability"]
    refused = scrape_refused(obs.token)
    if refused is not None:
        return refused
    registry = metrics.scrape_registry([QueueCollector(obs.services),
                                         BacklogCollector(obs.services)])
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), 200, headers={"Content-Type": content_type,
                                                     "Cache-Control": "no-store"})


def scrape_refused(token: str) -> Response | None:
    """None when this request may read /metrics, else the refusal."""
    if token:
        if bearer_matches(request.headers.get("Authorization", ""), token):
            return None
        return Response("Unauthorized: /metrics needs Authorization: Bearer <token>\n", 401,
                        mimetype="text/plain", headers={"WWW-Authenticate": "Bearer"})
    if _loopback(request.remote_addr) and not any(h in request.headers for h in PROXY_HEADERS):
        return None
    return Response("Forbidden: /metrics is open to this machine only; set [metrics] token "
                    "(IVR_METRICS_TOKEN) to scrape it from elsewhere\n", 403,
                    mimetype="text/plain")


def _loopback(address: str | None) -> bool:
    try:
        return ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


# -- wiring --------------------------------------------------------------------------------


@dataclass
class Observability:
    services: Any
    readiness: Readiness
    token: str


def init_observability(app: Flask, services: Any) -> None:
    """Probes, /metrics, request timing and the CallSid on log lines, for one app."""
    if metrics.prepare_process():
        log.info("metrics: multiprocess mode, in %s", metrics.multiprocess_dir())
    app.extensions["ivr_observability"] = Observability(
        services=services,
        readiness=Readiness(readiness_checks(services), services.config.metrics.
                            readiness_timeout),
        token=services.config.metrics.token)
    metrics.install_request_metrics(app)
    install_request_context(app)  # inserted first: its sid is set before any other hook
    app.register_blueprint(bp)
