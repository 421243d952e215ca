"""What the run left in Redis and the call log: checked after the run, then removed.

Why: the HTTP answers show what callers heard; the call log shows what the server
recorded (a started call, the key pressed, the account collected, errors). Both must
agree, and a shared Redis or PostgreSQL must not keep the bench's keys and rows.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from ivr_server.db import make_engine
from ivr_server.redis_conn import connect


def call_log_counts(db_url: str, sid_prefix: str) -> dict[str, int]:
    """Calls started and the events that mark each step as done, for CallSids with the prefix."""
    engine = make_engine(db_url)
    like = {"p": sid_prefix + "%"}
    try:
        with engine.connect() as cn:
            calls = cn.execute(text("SELECT count(*) FROM calls WHERE call_sid LIKE :p"),
                               like).scalar_one()
            rows = cn.execute(text(
                "SELECT node, kind, count(*) FROM call_events WHERE call_sid LIKE :p "
                "GROUP BY node, kind"), like).all()
    finally:
        engine.dispose()
    events = {(node, kind): int(count) for node, kind, count in rows}
    return {
        "calls_started": int(calls),
        "lookup_failed_fast": events.get(("lookup_caller", "route"), 0),
        "pressed_billing": events.get(("main_menu", "key"), 0),
        "account_collected": events.get(("account_number", "collected"), 0),
        "transferred_to_billing": events.get(("billing_desk", "transfer"), 0),
        "errors": sum(c for (_, kind), c in events.items() if kind == "error"),
    }


def backlog_lengths(redis_url: str, prefix: str) -> dict[str, int]:
    """Call-log records still queued in Redis, or rejected for good (both 0 once drained)."""
    client = connect(redis_url)
    try:
        return {"backlog": int(client.llen(f"{prefix}calllog:backlog")),
                "dead": int(client.llen(f"{prefix}calllog:dead"))}
    finally:
        client.close()


def wait_drained(redis_url: str, prefix: str, timeout: float = 30.0) -> float | None:
    """Seconds until the write-behind queue was empty (None: still not after `timeout`)."""
    client = connect(redis_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            if not client.llen(f"{prefix}calllog:backlog"):
                return round(time.monotonic() - started, 2)
            time.sleep(0.1)
        return None
    finally:
        client.close()


def delete_redis_keys(redis_url: str, prefix: str) -> int:
    client = connect(redis_url)
    deleted = 0
    try:
        batch: list[str] = []
        for key in client.scan_iter(f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
    finally:
        client.close()
    return deleted


def delete_call_rows(db_url: str, sid_prefix: str) -> int:
    """Remove this run's calls and events (a shared database keeps only real calls)."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as cn:
            like = {"p": sid_prefix + "%"}
            n = cn.execute(text("DELETE FROM call_events WHERE call_sid LIKE :p"), like).rowcount
            n += cn.execute(text("DELETE FROM calls WHERE call_sid LIKE :p"), like).rowcount
    finally:
        engine.dispose()
    return int(n or 0)
