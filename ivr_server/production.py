"""`ivr serve --production`: the app under gunicorn, configured by config.toml and env only.

Worker model: gthread, `[server] workers` processes x `threads` threads each. A webhook
answers in milliseconds, but a Twilio media stream (`/voice/stream`, flask-sock on
simple-websocket) holds one thread for as long as it is open: a whole streamed prompt, or
a whole hold when a callback offer listens for speech. Sizing rule: threads per worker >=
media streams open at once per worker + headroom for webhooks (4 or so). More workers add
CPU for speech decoding and isolation (each loads its own speech model); more threads add
concurrent streams. Defaults: 2 x cores + 1 workers (at most 8) of 16 threads.

Nothing crosses a fork. The arbiter only prepares: the embedded Redis of a one-machine
trial, SQLite migrations or the PostgreSQL schema check, the Prometheus multiprocess
directory. Each worker builds its own app in `load()`, after the fork, with its own Redis
and SQL connections and call-log writer; `worker_exit` writes what that writer still has
queued. SIGTERM is gunicorn's graceful stop: in-flight requests get `graceful_timeout`.

SIGHUP (`kill -HUP <arbiter>`) is gunicorn's graceful reload: the arbiter reads config.toml
again (`IvrApplication.load_config`), starts new workers, which build
their apps from what it read, and lets the old ones finish their requests. What the
arbiter applied once keeps its running value until a full restart, and the log names any
such setting that changed (`RESTART_ONLY`). A process's environment is fixed when it
starts: a changed variable needs a restart too. A file that does not load, or an app that
cannot be built from it, leaves the workers on the configuration they had.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from .config import Config, find_config_file, load_config
from .json_logs import to_root_handlers

log = logging.getLogger("ivr_server.production")

MAX_DEFAULT_WORKERS = 8  # each worker holds its own speech model and connection pools
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# What SIGHUP cannot change: gunicorn's own settings (the listening socket, how many
# processes and threads, timeouts, whose forwarded headers count) and what the arbiter
# prepared before the first worker (the Redis it may run, the database it checked, the
# logging it set up, the metrics folder).
RESTART_ONLY: dict[str, tuple[str, ...]] = {
    "server": ("host", "port", "workers", "threads", "timeout", "graceful_timeout",
               "keepalive", "max_requests", "max_requests_jitter", "trust_proxy",
               "forwarded_allow_ips", "access_log", "instance_path"),
    "redis": ("url", "key_prefix"),
    "database": ("url",),
    "metrics": ("multiproc_dir",),
    "logging": ("format", "level"),
}


class ProductionError(RuntimeError):
    """The production server cannot start: a setting out of range, or no database schema."""


def default_workers(cores: int | None = None) -> int:
    """2 x cores + 1, the usual gunicorn rule, capped: past 8 add machines, not workers."""
    return min(2 * (cores or os.cpu_count() or 1) + 1, MAX_DEFAULT_WORKERS)


def gunicorn_options(config: Config, host: str, port: int) -> dict[str, Any]:
    """gunicorn's settings from `[server]`: no gunicorn command line or config file."""
    s = config.server
    if s.workers < 0 or s.threads < 1:
        raise ProductionError(f"[server] workers ({s.workers}) must be 0 (automatic) or more "
                              f"and threads ({s.threads}) 1 or more")
    for name in ("timeout", "graceful_timeout", "keepalive", "max_requests",
                 "max_requests_jitter"):
        if getattr(s, name) < 0:
            raise ProductionError(f"[server] {name} must not be negative")
    return {
        "bind": [f"[{host}]:{port}" if ":" in host and not host.startswith("[")
                 else f"{host}:{port}"],
        "worker_class": "gthread",
        "workers": s.workers or default_workers(),
        "threads": s.threads,
        "timeout": s.timeout,
        "graceful_timeout": s.graceful_timeout,
        "keepalive": s.keepalive,
        "max_requests": s.max_requests,
        "max_requests_jitter": s.max_requests_jitter,
        # Whose X-Forwarded-Proto gunicorn believes: the balancer's, and only with
        # trust_proxy (the app's ProxyFix reads the same headers then).
        "forwarded_allow_ips": s.forwarded_allow_ips if s.trust_proxy else "",
        "accesslog": "-" if s.access_log else None,
        "errorlog": "-",
        "loglevel": logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
        "logger_class": ProjectLogger,
        "proc_name": "ivr",
        # gunicorn >= 25.1 opens a control socket in $HOME by default: two servers on one
        # machine would fight over it. Nothing here needs it.
        "control_socket_disable": True,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }


class ProjectLogger(glogging.Logger):
    """gunicorn's error and access logs go through the project's logging set-up (the root
    logger's handlers and format, JSON included) instead of handlers of gunicorn's own."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        self._access_log_enabled = bool(cfg.accesslog)
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)
        to_root_handlers(self.error_log, self.access_log)


class IvrApplication(BaseApplication):
    """gunicorn running the IVR app; `load()` runs in each worker, after the fork.

    `config_file` is read again on SIGHUP (None: $IVR_CONFIG or ./config.toml, if any);
    `as_read` is the configuration as first read, before the arbiter's own changes to it
    (the embedded Redis's URL)."""

    def __init__(self, config: Config, options: Mapping[str, Any],
                 config_file: Path | None = None, as_read: Config | None = None):
        self.config, self.options = config, dict(options)
        self.config_file, self.as_read = config_file, as_read or config
        self.previous: Config | None = None  # the configuration before the last SIGHUP
        self._started = False
        super().__init__()  # calls load_config

    def init(self, parser: Any, opts: Any, args: Any) -> None:
        return None  # no gunicorn command line to read

    def load_config(self) -> None:
        """gunicorn's hook: at start, and in the arbiter on SIGHUP (gunicorn then starts
        new workers, which fork from here and so build their apps from this config)."""
        if self._started:
            self.previous = self.config
            self.config = reread(self.config, self.as_read, self.config_file)
        self._started = True
        for key, value in self.options.items():  # gunicorn's own: fixed until a restart
            if key in self.cfg.settings:  # control_socket_disable: gunicorn >= 25.1 only
                self.cfg.set(key, value)

    def load(self) -> Any:
        from . import create_app

        try:
            app = create_app(self.config)
        except Exception:
            if self.previous is None:
                raise
            # A worker that fails to boot makes gunicorn stop the whole server.
            log.exception("the configuration read on SIGHUP does not start; this worker "
                          "runs the one from before")
            app = create_app(self.previous)
        app.extensions["ivr"].start_background()
        # The app's long-lived objects (flows, config, SQLAlchemy's mappers, the speech
        # model's wrappers) are never garbage: out of the collector's way, so a full
        # collection, which stops every thread of the worker, stays short.
        gc.freeze()
        return app


def reread(running: Config, as_read: Config, config_file: Path | None) -> Config:
    """config.toml and the environment read again for the next workers, with every
    RESTART_ONLY setting at its running value; those that now read differently from the
    start are logged. Never raises: gunicorn ends the arbiter on an error here, so a bad
    file keeps the running config."""
    try:
        fresh = load_config(config_file, env=os.environ)
    except Exception as exc:  # noqa: BLE001 - ConfigError, or anything else reading it
        log.error("SIGHUP: %s; the workers keep the running configuration", exc)
        return running
    kept = []
    for section, keys in RESTART_ONLY.items():
        now, first = getattr(fresh, section), getattr(as_read, section)
        kept += [f"[{section}] {key}" for key in keys if getattr(now, key) != getattr(first, key)]
        fresh = fresh.with_section(section, **{key: getattr(getattr(running, section), key)
                                               for key in keys})
    log.info("SIGHUP: read %s again; new workers use it (environment variables are as at "
             "start: changing one needs a restart)", config_file or "the defaults")
    if kept:
        log.warning("SIGHUP: changed, but only a full restart applies (kept as running): %s",
                    ", ".join(kept))
    return fresh


def _config_file() -> Path | None:
    """The file this server was started with (`ivr --config`, else $IVR_CONFIG or
    ./config.toml), as an absolute path: what SIGHUP reads again."""
    import click

    ctx = click.get_current_context(silent=True)
    named = ctx.find_root().params.get("config_path") if ctx is not None else None
    path = Path(named) if named else find_config_file(os.environ)
    return path.resolve() if path is not None else None


def worker_exit(server: Any, worker: Any) -> None:
    """In a worker on its way out (SIGTERM, max_requests): write the call log its writer
    still has queued, and stop the writer."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("ivr") if app is not None else None
    if services is not None:
        services.close()


def child_exit(server: Any, worker: Any) -> None:
    """In the arbiter when a worker has gone: its live Prometheus gauges go with it."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    from .metrics import mark_process_dead

    try:
        mark_process_dead(worker.pid)
    except OSError as exc:
        log.warning("could not remove worker %s's metrics files: %s", worker.pid, exc)


def prepare_metrics_dir(config: Config, env: MutableMapping[str, str] | None = None) -> Path:
    """Where the workers' Prometheus files go: PROMETHEUS_MULTIPROC_DIR when set (the
    operator's to manage), else `[metrics] multiproc_dir` or <instance>/prometheus, emptied
    of a previous run's files and exported to the workers."""
    env = os.environ if env is None else env
    if env.get(MULTIPROC_ENV):
        path = Path(env[MULTIPROC_ENV])
        path.mkdir(parents=True, exist_ok=True)
        return path
    configured = config.metrics.multiproc_dir
    path = (config.path(configured) if configured else config.instance_dir / "prometheus")
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    env[MULTIPROC_ENV] = str(path)  # each worker's metrics.prepare_process() reads it
    return path


def prepare_database(config: Config) -> None:
    """As plain `serve`: SQLite is migrated; PostgreSQL must already have its schema."""
    from . import db

    if config.database_url.startswith("sqlite"):
        db.upgrade(config.database_url)
    elif db.current_revision(config.database_url) is None:
        raise ProductionError("the database has no schema yet: run `ivr db upgrade`")


def preload_speech_model(config: Config) -> None:
    """The vosk model (hundreds of MB), loaded once here before the workers fork: they
    share its memory (copy-on-write; decoding never writes it), and each starts able to
    recognise, so no caller's turn waits for a load and /readyz holds for every worker, not
    only the one a probe reached. A failed load is left to each worker to try again."""
    path = config.speech_model_path
    if path is None:
        return
    from speech.model import shared_model

    started = time.monotonic()
    try:
        shared_model(str(path)).load()
    except Exception as exc:  # noqa: BLE001 - the workers try again; /readyz says so
        log.error("speech model %s not loaded before the workers start (%s: %s); each "
                  "worker loads its own when first asked", path, type(exc).__name__, exc)
        return
    log.info("speech model loaded in %.1f s, shared by every worker", time.monotonic() - started)


def serve_production(config: Config, host: str, port: int) -> None:
    """Prepare in this process (the arbiter), then run gunicorn until SIGTERM or SIGINT."""
    from . import auth_token

    options = gunicorn_options(config, host, port)
    as_read, arbiter_pid = config, os.getpid()
    embedded = None
    try:
        if not config.redis.url:
            from .redis_conn import EmbeddedRedis

            embedded = EmbeddedRedis(config.instance_dir)
            config = config.with_section("redis", url=embedded.url)
            log.warning("no REDIS_URL: running an embedded redis-server (pid %s), fit for a "
                        "one-machine trial only. In production every web node and `ivr "
                        "worker` shares one Redis: set REDIS_URL.", embedded.pid)
        prepare_database(config)
        auth_token(config)  # a generated local token: made once here, not once per worker
        metrics = prepare_metrics_dir(config)
        for line in _banner(config, options, metrics):
            log.info("%s", line)
        preload_speech_model(config)
        IvrApplication(config, options, _config_file(), as_read).run()  # leaves via SystemExit
    finally:
        # Worker processes leave through here too (SystemExit, after worker_exit): only the
        # arbiter owns the embedded Redis.
        if embedded is not None and os.getpid() == arbiter_pid:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # gunicorn's reaper is done
            embedded.shutdown()


def _banner(config: Config, options: Mapping[str, Any], metrics: Path) -> list[str]:
    from .cli import _hide_password

    bind = options["bind"][0]
    base = config.server.public_base_url.rstrip("/") or f"http://{bind}"
    return [
        f"IVR server (gunicorn, {options['workers']} gthread workers x {options['threads']} "
        f"threads) listening on http://{bind}",
        f"Twilio voice URL: {base}/voice/incoming (fallback {base}/voice/fallback, "
        f"status {base}/voice/status)",
        f"Redis: {_hide_password(config.redis.url)}",
        f"Database: {_hide_password(config.database_url)}",
        f"Flows: {config.flows_dir}",
        f"Prometheus multiprocess files: {metrics}",
    ]
