"""The real IVR app for gunicorn (`bench.ivr_wsgi:app`), configured by the environment alone.

Bench-only knobs, all read from the environment:
BENCH_CRM_URL replaces the flows' `crm_url` setting (config.toml has no variable for it) and
turns the CRM circuit breaker off, so every call pays its failed lookup as before the breaker,
BENCH_CLOCK_OFFSET shifts the clock so the demo flow is in office hours at any hour, and
BENCH_PROFILE_DIR samples each worker's CPU (`--profile`, bench/sampler.py) to find hot
paths.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ivr_server import create_app
from ivr_server.clock import Clock, system_clock
from ivr_server.config import Config, load_config

from .sampler import CpuSampler

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def bench_config() -> Config:
    config = load_config()
    crm = os.environ.get("BENCH_CRM_URL")
    if crm:
        config = config.with_section("flows", settings={**config.flows.settings, "crm_url": crm})
        config = config.with_section("lookup", breaker_failures=0)
    return config


def bench_clock() -> Clock:
    offset = dt.timedelta(seconds=int(os.environ.get("BENCH_CLOCK_OFFSET", "0")))
    if not offset:
        return system_clock

    def shifted() -> dt.datetime:
        return system_clock() + offset

    return shifted


def profiled(wsgi: Wsgi, directory: Path, every: int = 200) -> Wsgi:
    """Sample this worker's CPU while it serves; samples dumped every `every` requests
    (dumping as we go: a worker stopped by SIGTERM never runs exit hooks we could trust)."""
    sampler = CpuSampler().start()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = list(wsgi(environ, start_response))  # the whole response, while counted
        sampler.requests += 1
        if sampler.requests % every == 0:
            sampler.dump(directory)
        return body

    return app


app = create_app(bench_config(), clock=bench_clock())
# As ivr_server/wsgi.py does: each worker runs one write-behind call-log writer thread (this
# was started twice here once, so every bench worker polled Redis with two writers), and
# writes what it still has queued when it exits.
app.extensions["ivr"].start_background()
atexit.register(app.extensions["ivr"].close)
if os.environ.get("BENCH_PROFILE_DIR"):
    app.wsgi_app = profiled(app.wsgi_app, Path(os.environ["BENCH_PROFILE_DIR"]))  # type: ignore[method-assign]
