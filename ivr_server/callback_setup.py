"""Callbacks wired from the config: the same pieces in the web server and in the worker."""

from __future__ import annotations

import redis
from sqlalchemy.orm import sessionmaker

from .callback_jobs import CallbackContext
from .callback_service import QUEUE_NAME, CallbackJobs, Callbacks, check_rules
from .callback_store import CallbackStore
from .clock import Clock
from .config import Config, ConfigError
from .queue_state import QueueState
from .twilio_rest import TwilioRest


def public_base(config: Config) -> str:
    """Where Twilio reaches us for a call we place (no request to learn it from)."""
    return config.server.public_base_url.rstrip("/") or \
        f"http://{config.server.host}:{config.server.port}"


def queue_name_for(config: Config) -> str:
    return f"{config.redis.key_prefix}{QUEUE_NAME}"


def callback_context(config: Config, jobs_redis: redis.Redis, session_factory: sessionmaker,
                     queues: QueueState | None, rest: TwilioRest | None, clock: Clock,
                     *, queue_name: str | None = None) -> CallbackContext:
    problems = check_rules(config.callbacks)
    if problems:
        raise ConfigError("; ".join(problems))
    store = CallbackStore(session_factory)
    # Named after the key prefix: deployments (or test runs) sharing one Redis never run
    # each other's callback jobs against the wrong database.
    jobs = CallbackJobs(jobs_redis, queue_name=queue_name or queue_name_for(config))
    return CallbackContext(Callbacks(store, jobs, config.callbacks, clock), store, rest,
                           queues, public_base(config), clock)
