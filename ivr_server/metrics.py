"""Prometheus metrics: what the server does, counted where it happens, served at /metrics.

The counters and histograms live in prometheus_client's default registry (it is global by
design: one set per process). Under gunicorn every worker is its own process, so when
PROMETHEUS_MULTIPROC_DIR is set each process writes its values to files in that folder and
/metrics sums them (multiprocess.MultiProcessCollector in a fresh CollectorRegistry per
scrape). `ivr worker` processes on the same machine count into the same folder when they
are started with the same PROMETHEUS_MULTIPROC_DIR; a worker on another machine serves its
own figures with `ivr worker --metrics-port N`.

Gauges and multiprocess mode: the queue figures are computed from Redis at scrape time by a
custom collector (metrics_collectors.py), so they need no per-process files and are right
whatever process answers. A gauge kept in process memory must pick a `multiprocess_mode`:
"livesum" (in-flight requests: the sum over live processes), "liveall" (one series per live
process, labelled by pid), "max"/"min" (e.g. a start time), "mostrecent" (a value any process
may set last); the "live*" modes need `mark_process_dead(pid)` from gunicorn's child_exit
hook so a dead worker's value disappears.

Label values are bounded: routes by their URL rule (unknown paths are "other"), methods and
outcomes from fixed sets. Never a CallSid or a phone number.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable

from flask import Flask, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, values
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import Collector

log = logging.getLogger("ivr_server.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# A webhook answers in 1-50 ms; the admin dashboard over a week takes seconds.
REQUEST_BUCKETS = (.001, .0025, .005, .0075, .01, .015, .025, .05, .075, .1, .25, .5, 1.0, 2.5)
RECOGNITION_BUCKETS = (.01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
OUTCOMES = frozenset({"self-served", "closed", "transferred", "callback", "abandoned",
                      "failed"})
SMS_EVENTS = frozenset({"queued", "refused", "sent", "failed", "undelivered", "received",
                        "opt_out"})
CALLBACK_EVENTS = frozenset({"requested", "placed", "completed", "failed"})
RECOGNITION_PATHS = frozenset({"record", "stream"})
UNMEASURED_BLUEPRINTS = frozenset({"observability"})  # probes and scrapes are not traffic

HTTP_LATENCY = Histogram(
    "ivr_http_request_duration_seconds",
    "Time to answer an HTTP request (Twilio webhooks, admin pages), by URL rule",
    ["endpoint", "method", "status"], buckets=REQUEST_BUCKETS)
CALLS_ENDED = Counter(
    "ivr_calls_ended", "Calls that ended, by outcome (as the call log holds it)",
    ["outcome"])
SMS_MESSAGES = Counter(
    "ivr_sms_messages", "Text messages: queued and refused by the web server, sent and failed "
    "by the worker, undelivered per Twilio's status callback, received, opt-outs", ["event"])
CALLBACKS = Counter(
    "ivr_callbacks", "Callbacks: requested (booked), placed (the call was dialled), "
    "completed, failed", ["event"])
RECOGNITION = Histogram(
    "ivr_speech_recognition_seconds",
    "Speech decode time per answer: a recording (record) or a streamed utterance (stream)",
    ["path"], buckets=RECOGNITION_BUCKETS)


# -- one-line hooks for the code that does the work ----------------------------------------


def call_ended(outcome: str | None) -> None:
    """A call is over: counted by the process that writes its end into the call log, with
    the log's outcome (calllog.py), once per call (a retried status callback ends nothing)."""
    CALLS_ENDED.labels(_bounded(outcome or "", OUTCOMES)).inc()


def sms(event: str) -> None:
    SMS_MESSAGES.labels(_bounded(event, SMS_EVENTS)).inc()


def callback(event: str) -> None:
    CALLBACKS.labels(_bounded(event, CALLBACK_EVENTS)).inc()


def recognition(decode_ms: float, path: str) -> None:
    """One recognised answer: `decode_ms` as speech.recognize reports it."""
    RECOGNITION.labels(_bounded(path, RECOGNITION_PATHS)).observe(max(0.0, decode_ms) / 1000)


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


# -- processes -----------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_process() -> bool:
    """Make this process count into PROMETHEUS_MULTIPROC_DIR when it is set (also when
    prometheus_client was imported before the variable was), then create the known label
    values so every series is exported from zero. Returns True in multiprocess mode."""
    multi = multiprocess_dir() is not None
    if multi and not getattr(values.ValueClass, "_multiprocess", False):
        # Only children created from now on use the files: every metric here has labels,
        # so none was created yet unless a hook already ran in this process.
        values.ValueClass = values.MultiProcessValue()
    for outcome in OUTCOMES:
        CALLS_ENDED.labels(outcome)
    for event in SMS_EVENTS:
        SMS_MESSAGES.labels(event)
    for event in CALLBACK_EVENTS:
        CALLBACKS.labels(event)
    return multi


def mark_process_dead(pid: int) -> None:
    """For gunicorn's child_exit hook: drop a dead worker's live-gauge files (counters and
    histograms stay, so totals never go down)."""
    path = multiprocess_dir()
    if path is not None:
        _multiprocess.mark_process_dead(pid, path)


def scrape_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """What /metrics serves: every process's files in multiprocess mode (a fresh registry,
    as prometheus_client requires), else this process's default registry; plus `extra`
    collectors that compute their figures at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path is not None:
        _multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Registered(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return registry


class _Registered(Collector):
    """Another registry's metrics, so per-app collectors never join the global registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self):  # noqa: ANN201 - Iterable[Metric]
        return self.registry.collect()


def serve_worker_metrics(port: int, host: str = "127.0.0.1") -> None:
    """For a worker on its own machine: its figures on http://host:port/metrics (no token:
    bind it to loopback or a private interface)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=scrape_registry())
    log.info("worker metrics on http://%s:%d/metrics", host, port)


# -- request timing ------------------------------------------------------------------------


def install_request_metrics(app: Flask) -> None:
    """Time every request from the first before_request hook (ahead of the admin guard) to
    the response, labelled by its URL rule, method and status class."""

    def started() -> None:
        g._ivr_started = time.perf_counter()

    def finished(response: Response) -> Response:
        # Never lets a metrics fault (a full or unwritable multiprocess folder, a bug) turn
        # the response into a 500: Twilio would tell the caller "an application error".
        try:
            begun = g.pop("_ivr_started", None)
            if begun is not None and not _unmeasured():
                HTTP_LATENCY.labels(*request_labels(response.status_code)).observe(
                    time.perf_counter() - begun)
        except Exception:  # noqa: BLE001 - the response matters more than its timing
            _timing_failures.note()
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, started)
    app.after_request(finished)


class _RareLog:
    """Logs a failure that would otherwise repeat on every request: the first one with its
    traceback, then at most once per `every` seconds with how many went unsaid."""

    def __init__(self, what: str, every: float = 600.0) -> None:
        self.what, self.every = what, every
        self.next_at: float | None = None
        self.unsaid = 0
        self.lock = threading.Lock()

    def note(self) -> None:
        now = time.monotonic()
        with self.lock:
            if self.next_at is not None and now < self.next_at:
                self.unsaid += 1
                return
            unsaid, self.unsaid, self.next_at = self.unsaid, 0, now + self.every
        log.exception("metrics: %s failed (the response was sent; %d more such failures "
                      "since the last report; next report in %.0f s at most)",
                      self.what, unsaid, self.every)


_timing_failures = _RareLog("timing a request")


def request_labels(status: int) -> tuple[str, str, str]:
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else "other"
    method = request.method if request.method in METHODS else "other"
    return endpoint, method, f"{status // 100}xx"


def _unmeasured() -> bool:
    if request.blueprint in UNMEASURED_BLUEPRINTS:
        return True
    # A websocket (the media stream) lasts as long as the prompt: not a webhook's latency.
    return request.headers.get("Upgrade", "").lower() == "websocket"
