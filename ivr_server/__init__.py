"""The IVR server: a Flask app factory wiring the pure flow engine to Twilio, Redis and SQL."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from sqlalchemy.orm import sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from flows.actions import HttpRequest
from flows.events import LookupDone

from .callback_setup import callback_context
from .calllog import CallLog
from .calllog_writer import BacklogWriter
from .clock import Clock, system_clock
from .config import Config, load_config
from .db import configured_engine, make_report_sessions, make_session_factory
from .lookup import HttpLookup
from .lookup_breaker import CircuitBreaker
from .queue_state import QueueState
from .redis_conn import connect
from .registry import FlowRegistry
from .sessions import SessionStore
from .signature import Signer
from .sms_deferred import DeferredTexts
from .sms_outbox import QUEUE_NAME as SMS_QUEUE
from .sms_outbox import SmsOutbox
from .sms_store import SmsStore
from .speech_input import SpeechInput
from .stream_answers import StreamAnswers
from .twilio_rest import TwilioRest
from .wait_estimates import WaitEstimates

log = logging.getLogger("ivr_server")


@dataclass
class Services:
    """Everything a webhook needs, created once per app and passed in (no module globals)."""

    config: Config
    redis: redis.Redis
    sessions: SessionStore
    registry: FlowRegistry
    calllog: CallLog
    session_factory: sessionmaker
    report_sessions: sessionmaker  # the admin pages' reports: a longer statement timeout
    validator: Signer
    clock: Clock
    lookup: Callable[[HttpRequest], LookupDone]
    writer: BacklogWriter
    streams: StreamAnswers
    queues: QueueState
    estimates: WaitEstimates
    sms_store: SmsStore
    outbox: SmsOutbox
    speech: SpeechInput | None = None  # None: no speech model configured, menus take keys
    rest: TwilioRest | None = None  # None: no account SID, so the server never calls Twilio
    callbacks: Any = None  # callback_jobs.CallbackContext
    sms_deferred: DeferredTexts | None = None  # set by create_app

    def start_background(self) -> None:
        """Start the call-log writer thread, which also replays text webhooks kept through
        an outage: once per server process (after any fork)."""
        self.writer.start()

    def close(self) -> None:
        """Write what is queued and stop the writer; for a clean process exit. Text
        webhooks this process kept in memory go to Redis if it is back by then."""
        self.writer.stop()
        if self.sms_deferred is not None:
            try:
                self.sms_deferred.release_held()
            except redis.RedisError as exc:
                log.error("text webhooks kept in memory are lost with this process: %s", exc)


def create_app(config: Config | None = None, *, clock: Clock | None = None,
               lookup: Callable[[HttpRequest], LookupDone] | None = None,
               redis_client: redis.Redis | None = None) -> Flask:
    config = config or load_config()
    app = Flask(__name__, instance_path=str(config.instance_dir.resolve()))
    if config.server.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_port=1,  # type: ignore
                                x_prefix=1)
    if redis_client is None:
        if not config.redis.url:
            raise RuntimeError("no Redis configured: set REDIS_URL, or start the server with "
                               "`ivr serve`, which runs an embedded Redis")
        redis_client = connect(config.redis.url)
    engine = configured_engine(config)
    session_factory = make_session_factory(engine)
    prefix = config.redis.key_prefix
    calllog = CallLog(session_factory, redis_client, prefix, log,
                      write_behind=config.calllog.write_behind)
    services = Services(
        config=config,
        redis=redis_client,
        sessions=SessionStore(redis_client, prefix, config.redis.session_ttl),
        registry=FlowRegistry(config.flows_dir, redis_client=redis_client,
                              session_factory=session_factory, prefix=prefix,
                              reload_interval=config.flows.reload_interval, logger=log),
        calllog=calllog,
        session_factory=session_factory,
        report_sessions=make_report_sessions(engine, config.database.report_timeout),
        validator=Signer(auth_token(config)),
        clock=clock or system_clock,
        lookup=lookup or HttpLookup(
            config.lookup.max_timeout, config.lookup.max_bytes, config.lookup.use_env_proxy,
            CircuitBreaker(config.lookup.breaker_failures, config.lookup.breaker_cooldown,
                           clock or system_clock)),
        writer=BacklogWriter(calllog, redis_client, prefix,
                             interval=config.calllog.flush_interval, logger=log),
        streams=StreamAnswers(redis_client, prefix),
        queues=(queues := QueueState(redis_client, prefix)),
        estimates=WaitEstimates(queues, config.queues.predictor),
        sms_store=(sms_store := SmsStore(session_factory)),
        outbox=SmsOutbox(_jobs_connection(redis_client), sms_store, config.sms,
                         clock or system_clock, queue_name=f"{prefix}{SMS_QUEUE}"),
    )
    services.speech = speech_input(config)
    services.rest = twilio_rest(config)
    services.callbacks = callback_context(config, _jobs_connection(redis_client),
                                          session_factory, queues, services.rest,
                                          services.clock)
    services.sms_deferred = DeferredTexts(redis_client, prefix, log)
    app.extensions["ivr"] = services
    services.registry.refresh(force=True)  # parse flows now, not on a caller's first request
    if config.twilio.dev_skip_signatures:
        log.warning("SIGNATURE CHECKS ARE OFF (IVR_DEV_SKIP_SIGNATURES): anyone can drive "
                    "calls on this server. Never run it like this where Twilio can reach it.")

    # media_stream and queue_calls add their routes (/voice/stream, /voice/queue/...) to bp
    from . import agents, callback_calls, media_stream, queue_calls, sms_hooks, voice  # noqa: F401

    app.register_blueprint(voice.bp)
    app.register_blueprint(agents.bp)
    app.register_blueprint(sms_hooks.bp)
    services.writer.chores.append(lambda: sms_hooks.replay(services))
    _agents_from_config(services)
    voice.register_error_handlers(app)
    from .admin import init_admin

    init_admin(app, services)
    from .health import init_observability

    init_observability(app, services)  # /healthz, /readyz, /metrics, timing, log call sids
    return app


def speech_input(config: Config) -> SpeechInput | None:
    """Speech for menus when a model is configured; it loads lazily, once per process."""
    path = config.speech_model_path
    if path is None:
        log.info("no speech model configured (speech.model_path): menus take keys only")
        return None
    from speech.model import shared_model

    return SpeechInput(shared_model(str(path)), account_sid=config.twilio.account_sid,
                       auth_token=auth_token(config), api_base_url=config.twilio.api_base_url,
                       min_confidence=config.speech.min_confidence,
                       max_bytes=config.speech.max_recording_bytes,
                       timeout=config.speech.download_timeout,
                       delete_recordings=config.speech.delete_recordings,
                       filler_words=config.speech.filler_words,
                       phrase_weight=config.speech.phrase_weight)


def _jobs_connection(client: redis.Redis) -> redis.Redis:
    """The same Redis without decoded replies, as RQ's binary jobs need."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **kwargs))


def _agents_from_config(services: Services) -> None:
    """Agents on duty from config, for queues where nobody has signed in or out yet."""
    now = services.clock().timestamp()
    for queue, count in services.config.queues.agents.items():
        try:
            if services.queues.agents(queue) is None:
                services.queues.set_agents(queue, int(count), now)
        except redis.RedisError as exc:  # the server still starts; calls degrade safely
            log.warning("could not set agents on duty for queue %s: %s", queue, exc)


def twilio_rest(config: Config) -> TwilioRest | None:
    """Twilio's REST API for this account (redirecting live calls), when one is configured."""
    if not config.twilio.account_sid:
        log.info("no Twilio account configured (twilio.account_sid): the server makes no REST "
                 "calls, so a streamed spoken answer waits for its prompt's timeout")
        return None
    return TwilioRest(config.twilio.account_sid, auth_token(config), config.twilio.api_base_url)


def auth_token(config: Config) -> str:
    """The configured token, or one generated once in the instance folder for local use.

    With a generated token real Twilio requests fail the signature check (403) until
    TWILIO_AUTH_TOKEN is set, which is the safe way to fail; `ivr call` signs with it.
    """
    if config.twilio.auth_token:
        return config.twilio.auth_token
    path = dev_token_path(config)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    path.write_text(token + "\n")
    path.chmod(0o600)
    log.warning("TWILIO_AUTH_TOKEN is not set: generated a local token in %s. Requests from "
                "Twilio will be refused (403) until you set your account's token.", path)
    return token


def dev_token_path(config: Config) -> Path:
    return config.instance_dir / "dev_auth_token"
