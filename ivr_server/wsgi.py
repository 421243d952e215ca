"""WSGI entry point for gunicorn and other servers: `gunicorn ivr_server.wsgi:app`.

Configured by config.toml and the environment only; needs REDIS_URL (the embedded Redis
belongs to `ivr serve`). Use gthread workers (media streams hold a thread each) and no
--preload, so each worker builds its own app and connections after the fork:
`gunicorn -k gthread --workers 3 --threads 16 ivr_server.wsgi:app`. `ivr serve --production`
does the same from config.toml alone. Each worker process starts its own call-log writer
thread and writes what it still has queued when it exits.

Logging is set up here as `ivr serve` sets it up: `[logging]` format and level
(IVR_LOG_FORMAT, IVR_LOG_LEVEL), CallSids on lines, callers' numbers masked, and gunicorn's
own worker lines (errors, and the access log when asked for) through the same handler.
gunicorn's master never imports this module, so its few start and stop lines keep
gunicorn's format; `ivr serve --production` formats those too.

Metrics: `ivr serve --production` points every worker at one PROMETHEUS_MULTIPROC_DIR,
empties it at start and drops a dead worker's live gauges. Under plain gunicorn with more
than one worker, set PROMETHEUS_MULTIPROC_DIR yourself to a folder emptied before each
start (e.g. `rm -rf /run/ivr-metrics && mkdir /run/ivr-metrics`), or each scrape of
/metrics shows only the worker that answered it.
"""

from __future__ import annotations

import atexit
import logging

from . import create_app, metrics
from .config import Config, load_config
from .json_logs import setup_logging, to_root_handlers


def _setup_logging(config: Config) -> None:
    """The project's handler on the root logger, and gunicorn's loggers handing their
    records to it (as production.ProjectLogger does) instead of writing their own lines."""
    setup_logging(config.logging)
    to_root_handlers(logging.getLogger("gunicorn.error"), logging.getLogger("gunicorn.access"))


config = load_config()
_setup_logging(config)
app = create_app(config)
app.extensions["ivr"].start_background()
atexit.register(app.extensions["ivr"].close)  # gunicorn workers leave through sys.exit
if metrics.multiprocess_dir() is None:
    logging.getLogger("ivr_server.wsgi").info(
        "no PROMETHEUS_MULTIPROC_DIR: /metrics shows this worker's figures only")
