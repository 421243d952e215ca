"""`ivr worker`: the RQ worker that sends texts and places callbacks.

It shares the web server's config: REDIS_URL (or the embedded Redis of a running `ivr
serve`), the database, and Twilio's account. Retries and callbacks due later wait in RQ's
ScheduledJobRegistry; every worker moves the due ones each second (`move_due`). At start,
and every `callbacks.reconcile_interval` seconds, it re-schedules from SQL whatever callback
jobs Redis lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import click
from rq import SimpleWorker

from .config import Config
from .json_logs import call_context, name_call


def job_context(config: Config, redis_url: str):  # noqa: ANN201 - sms_jobs.JobContext
    """What jobs need, made once per worker process from the config."""
    from . import auth_token
    from .clock import system_clock
    from .db import configured_engine, make_session_factory
    from .redis_conn import connect
    from .sessions import SessionStore
    from .sms_jobs import JobContext
    from .sms_store import SmsStore
    from .twilio_rest import TwilioRest

    rest = None
    if config.twilio.account_sid:
        rest = TwilioRest(config.twilio.account_sid, auth_token(config),
                          config.twilio.api_base_url)
    base = config.server.public_base_url.rstrip("/")
    redis = connect(redis_url)
    sessions = SessionStore(redis, config.redis.key_prefix, config.redis.session_ttl)

    def still_queued(call_sid: str) -> bool:
        session = sessions.load(call_sid)
        return bool(session and not session.done and session.queue.get("name")
                    and not session.queue.get("leaving"))

    return JobContext(SmsStore(make_session_factory(configured_engine(config))), rest,
                      config.sms, system_clock,
                      f"{base}/sms/status" if base else None, still_queued,
                      locks=redis, key_prefix=config.redis.key_prefix)


def callback_job_context(config: Config, redis_url: str):  # noqa: ANN201 - CallbackContext
    from . import twilio_rest  # the factory in __init__, not the module
    from .callback_setup import callback_context
    from .clock import system_clock
    from .db import configured_engine, make_session_factory
    from .queue_state import QueueState
    from .redis_conn import connect

    return callback_context(config, connect(redis_url, decode=False),
                            make_session_factory(configured_engine(config)),
                            QueueState(connect(redis_url), config.redis.key_prefix),
                            twilio_rest(config), system_clock)


def job_call_sid(job: Any) -> str | None:
    """The call an RQ job works for, as its enqueuer named it in the job's meta (a text's,
    a callback's); None for a job of no call or many (the served batch names each inside)."""
    sid = (job.meta or {}).get("call_sid")
    return str(sid) if sid else None


class CallWorker(SimpleWorker):
    """RQ's in-process worker, with every line written while a job runs (the job's own,
    RQ's result, retry and traceback lines) tagged with the CallSid of the call the job is
    for, from the job's meta: no read of its row per job. RQ's "taking job X" line comes
    before the job is known as started, and has none."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        with call_context(None):  # what name_call sets ends with the worker
            return super().work(*args, **kwargs)

    def prepare_execution(self, job: Any) -> Any:
        execution = super().prepare_execution(job)  # in RQ's started registry from here
        name_call(job_call_sid(job))
        return execution

    def execute_job(self, job: Any, queue: Any) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            name_call(None)


def reconcile_every(passes: dict[str, Callable[[], object]], interval: float,
                    stop: threading.Event) -> None:
    """Each pass (the callbacks' reconciler, lost texts), now and then every `interval`
    seconds, until `stop` is set."""
    while True:
        for name, run in passes.items():
            try:
                run()
            except Exception:  # noqa: BLE001 - a failed pass is retried at the next interval
                logging.getLogger("ivr_server.worker").exception("%s failed", name)
        if stop.wait(interval):
            return


def recover_abandoned(queues: list, interval: float, stop: threading.Event) -> None:
    """Retry jobs whose worker died mid-run, every `interval` seconds, not at RQ's 10-minute
    upkeep: a text a SIGKILLed worker was sending goes out minutes sooner (sms_jobs asks
    Twilio first, so one the dead worker did send is not sent twice)."""
    from rq.registry import StartedJobRegistry

    while not stop.wait(interval):
        for queue in queues:
            try:
                StartedJobRegistry(queue=queue).cleanup()
            except Exception:  # noqa: BLE001 - Redis away: the next pass tries again
                logging.getLogger("ivr_server.worker").exception(
                    "recovering abandoned jobs of %s failed", queue.name)


@click.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@click.option("--metrics-port", type=int, default=None,
              help="serve this worker's Prometheus metrics on this port (a worker on another "
                   "machine than the web server; on the same one, share "
                   "PROMETHEUS_MULTIPROC_DIR instead)")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="interface for --metrics-port (it has no token: keep it private)")
@click.pass_obj
def worker_command(config: Config, burst: bool, metrics_port: int | None,
                   metrics_host: str) -> None:
    """Send queued texts and place callbacks (the web server only queues them)."""
    from .callback_jobs import use_context as use_callback_context
    from .callback_reconcile import move_due, move_due_once, reconcile
    from .clock import system_clock
    from .redis_conn import connect, running_server_url
    from .sms_jobs import use_context
    from .sms_outbox import QUEUE_NAME, SmsOutbox
    from .sms_recover import recover_lost_texts

    url = running_server_url(config.redis.url, config.instance_dir)
    if url is None:
        raise click.ClickException("no Redis: set REDIS_URL, or start `ivr serve` first")
    from . import metrics
    from .cli import _setup_logging

    _setup_logging(config)
    metrics.prepare_process()  # counts into PROMETHEUS_MULTIPROC_DIR when it is set
    if metrics_port is not None:
        metrics.serve_worker_metrics(metrics_port, metrics_host)
    use_context(texts := job_context(config, url))
    callbacks = callback_job_context(config, url)
    use_callback_context(callbacks)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # 15 lines a request
    jobs = connect(url, decode=False)
    queue = callbacks.callbacks.jobs.queue
    outbox = SmsOutbox(jobs, texts.store, config.sms, system_clock,
                       queue_name=f"{config.redis.key_prefix}{QUEUE_NAME}")
    sms = outbox.queue
    passes = {"callback reconcile": lambda: reconcile(callbacks),
              "lost texts": lambda: recover_lost_texts(outbox, system_clock())}
    stop = threading.Event()
    if burst:
        for run in passes.values():
            run()
        for due in (queue, sms):
            move_due_once(due)
    else:
        interval = config.callbacks.reconcile_interval
        for name, target, args in (("reconciler", reconcile_every, (passes, interval)),
                                   ("callback-mover", move_due, (queue,)),
                                   ("sms-mover", move_due, (sms,)),
                                   ("job-recovery", recover_abandoned, ([queue, sms], interval))):
            threading.Thread(target=target, daemon=True, name=name, args=(*args, stop)).start()
    try:
        # Jobs run in this process (no fork per job): they are short and wait on Twilio and
        # SQL, and a fork would copy the reconciler's SQL connections mid-use. Nor RQ's
        # scheduler (a fork too): the movers above do its work from every worker.
        CallWorker([queue, sms], connection=jobs).work(burst=burst)
    finally:
        stop.set()
