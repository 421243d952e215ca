"""After the load: what the server and the worker recorded, and every sign of an error.

Why: the answers the callers got are half the story. The texts and callbacks go out
through the RQ worker to Twilio's contract (Prism), the call log is written behind the
webhooks, and a server can log a traceback while still answering 200. Each of those is
counted here, so the run's error count is zero only if all of them are.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ivr_server.db import make_engine
from ivr_server.redis_conn import connect
from tests.prism import TwilioApiMock

# Levels as the server and worker log them ("... ERROR ivr_server: ..."), and tracebacks;
# case matters: gunicorn's own logger is called "gunicorn.error" and logs INFO lines.
ERROR_LINE = re.compile(r"Traceback|\b(ERROR|CRITICAL)\b|\[(ERROR|CRITICAL)\]")
FINAL = ("completed", "failed", "cancelled")


def twilio_requests(mock: TwilioApiMock) -> dict[str, Any]:
    """Texts and calls as they reached Twilio's contract: accepted (2xx) or refused."""
    out: Counter[str] = Counter()
    refused: list[str] = []
    for r in mock.requests:
        path = r.path.split("?")[0]
        what = "sms" if path.endswith("/Messages.json") and r.method == "POST" else \
            "calls" if path.endswith("/Calls.json") and r.method == "POST" else "other"
        ok = 200 <= r.status < 300
        out[f"{what}_{'accepted' if ok else 'refused'}"] += 1
        if not ok and len(refused) < 5:
            refused.append(f"{r.method} {path} -> {r.status}: {r.answer[:200]}")
    return {**{k: out.get(k, 0) for k in ("sms_accepted", "sms_refused", "calls_accepted",
                                          "calls_refused", "other_accepted", "other_refused")},
            "refusals": refused}


def database(url: str) -> dict[str, Any]:
    """Counts from the run's own database (a fresh schema or SQLite file)."""
    engine = make_engine(url)
    try:
        with engine.connect() as cn:
            def rows(sql: str) -> list[Any]:
                return list(cn.execute(text(sql)).all())

            calls = rows("SELECT count(*) FROM calls")[0][0]
            events = dict(rows("SELECT kind, count(*) FROM call_events GROUP BY kind"))
            sms = {f"{k} {s}": n for k, s, n in rows(
                "SELECT kind, status, count(*) FROM sms_messages WHERE direction = 'outbound' "
                "GROUP BY kind, status")}
            callbacks = dict(rows("SELECT state, count(*) FROM callbacks GROUP BY state"))
            reasons = dict(rows("SELECT reason, count(*) FROM callbacks GROUP BY reason"))
    finally:
        engine.dispose()
    return {"calls": int(calls), "events": {k: int(v) for k, v in events.items()},
            "sms": sms, "callbacks": {k: int(v) for k, v in callbacks.items()},
            "callback_reasons": {k: int(v) for k, v in reasons.items()}}


def open_callbacks(url: str) -> int:
    """Callback requests not yet completed, failed or cancelled (the drain waits for them)."""
    engine = make_engine(url)
    try:
        with engine.connect() as cn:
            return int(cn.execute(text(
                "SELECT count(*) FROM callbacks WHERE state NOT IN ('completed', 'failed', "
                "'cancelled')")).scalar_one())
    finally:
        engine.dispose()


def redis_state(url: str, prefix: str, queues: list[str]) -> dict[str, int]:
    """The call log's write-behind queue, and RQ jobs that failed or wait to run."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    client = connect(url)
    jobs = connect(url, decode=False)
    try:
        out = {"calllog_backlog": int(client.llen(f"{prefix}calllog:backlog")),
               "calllog_dead": int(client.llen(f"{prefix}calllog:dead"))}
        for name in queues:
            queue = Queue(name, connection=jobs)
            short = name.removeprefix(prefix)
            out[f"rq_{short}_failed"] = FailedJobRegistry(queue=queue).count
            out[f"rq_{short}_queued"] = queue.count
            out[f"rq_{short}_scheduled"] = ScheduledJobRegistry(queue=queue).count
        return out
    finally:
        client.close()
        jobs.close()


def log_errors(path: Path, limit: int = 8) -> tuple[int, list[str]]:
    """Lines in a process's log that say something went wrong, and the first few."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    bad = [ln for ln in lines if ERROR_LINE.search(ln)]
    return len(bad), bad[:limit]


def delete_keys(url: str, prefix: str, queues: list[str]) -> int:
    """The run's keys (its prefix, its RQ queues, their jobs), never FLUSHDB: Redis may be
    shared. Jobs RQ no longer lists expire by themselves."""
    from rq import Queue
    from rq.registry import (
        CanceledJobRegistry,
        DeferredJobRegistry,
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    client = connect(url, decode=False)
    keys: list[bytes | str] = []
    try:
        for name in queues:
            queue = Queue(name, connection=client)
            ids = set(queue.get_job_ids())
            for registry in (FinishedJobRegistry, FailedJobRegistry, ScheduledJobRegistry,
                             StartedJobRegistry, DeferredJobRegistry, CanceledJobRegistry):
                ids |= set(registry(queue=queue).get_job_ids())
            keys += [f"{kind}:{job}" for job in ids
                     for kind in ("rq:job", "rq:results", "rq:executions")]
            keys += list(client.scan_iter(f"rq:*{name}*", count=1000))
            client.srem("rq:queues", f"rq:queue:{name}")
        keys += list(client.scan_iter(f"{prefix}*", count=1000))
        deleted = 0
        for i in range(0, len(keys), 1000):
            deleted += int(client.delete(*keys[i:i + 1000]))
        return deleted
    finally:
        client.close()


def scrape_latency(port: int) -> dict[float, float] | None:
    """The server's own histogram of the time its app took per request (all endpoints and
    workers summed), as cumulative counts by bucket bound; None without /metrics."""
    import http.client

    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        if resp.status != 200:
            return None
    except OSError:
        return None
    finally:
        conn.close()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "ivr_http_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("method") == "POST":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return buckets or None


def histogram_percentiles(before: dict[float, float] | None,
                          after: dict[float, float] | None) -> dict[str, Any] | None:
    """p50/p90/p99 of the requests between two scrapes, as the bound of the bucket each
    falls in (ms; '>2500' past the last bound)."""
    if before is None or after is None:
        return None
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    out: dict[str, Any] = {"n": int(total)}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        bound = next(b for b, c in zip(bounds, counts, strict=True) if c >= q * total)
        out[name] = "more" if bound == float("inf") else round(bound * 1000, 1)
    return out
