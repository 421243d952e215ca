"""How fast the supervisor pages answer on a busy line: `.venv/bin/python -m bench.admin_pages`.

Seeds a fresh database with `--calls` calls spread over a week (about 12 timeline events
each, 40% through a queue with a predicted and an actual wait), then times the pages a
supervisor opens (dashboard for a week and for a day, the calls list with and without
filters, one call's timeline, the CSV export of a day) through the real app and its SQL,
signed in as a supervisor. Each page is requested `--repeat` times; the table shows the
median and the slowest, in milliseconds, server side (Flask's test client: no network).

SQL: DATABASE_URL (PostgreSQL; a fresh schema, dropped after), else a SQLite file. Redis:
REDIS_URL, else an embedded redis-server. Saves JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.report import hide_password, save
from bench.servers import redis_url
from ivr_server import create_app, db
from ivr_server.config import load_config
from ivr_server.models import Call, CallEvent
from tests.db_fixtures import fresh_database

ROOT = Path(__file__).resolve().parent.parent
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
WEEK = 7 * 24 * 3600
OUTCOMES = [("self-served", 45), ("transferred", 30), ("abandoned", 15), ("callback", 5),
            ("failed", 5)]
PASSWORD = "bench password, long enough"


def seed(url: str, calls: int, rng: random.Random) -> list[str]:
    """Insert the calls and their events with Core executemany, in chunks."""
    engine = db.make_engine(url)
    outcomes = [o for o, weight in OUTCOMES for _ in range(weight)]
    sids: list[str] = []
    call_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []

    def flush() -> None:
        with engine.begin() as conn:
            if call_rows:
                conn.execute(Call.__table__.insert(), call_rows)
            if event_rows:
                conn.execute(CallEvent.__table__.insert(), event_rows)
        call_rows.clear()
        event_rows.clear()

    for i in range(calls):
        sid = f"CA{uuid.uuid4().hex}"
        sids.append(sid)
        started = START + dt.timedelta(seconds=i * WEEK / calls)
        outcome = rng.choice(outcomes)
        queue = rng.choice(["front-desk", "billing"]) if rng.random() < 0.4 else None
        duration = rng.randrange(20, 900)
        call_rows.append({
            "call_sid": sid, "account_sid": "AC" + "0" * 32,
            "from_number": f"+1628{rng.randrange(2, 10)}{rng.randrange(10**6):06d}",
            "to_number": "+15005550006", "direction": "inbound", "flow": "company",
            "flow_version": "0123456789abcdef", "started_at": started,
            "ended_at": started + dt.timedelta(seconds=duration), "status": "completed",
            "outcome": outcome, "duration": duration, "tags": {}, "queue": queue})
        steps: list[tuple[str, str | None, dict[str, Any]]] = [
            ("call_started", None, {"flow": "company"}),
            ("prompt", "greet", {"text": "Thanks for calling Acme."}),
            ("route", "greet", {"to": "main_menu", "reason": "say"}),
            ("prompt", "main_menu", {"text": "For billing, press 1. ..."}),
            ("key", "main_menu", {"digits": "1", "choice": "billing"}),
            ("route", "main_menu", {"to": "account_number", "reason": "pressed 1"}),
            ("prompt", "account_number", {"text": "Please key in your account number."}),
            ("collected", "account_number", {"digits": "****5674"}),
        ]
        if queue:
            predicted = rng.randrange(30, 600)
            waited = max(0, int(rng.gauss(predicted, predicted / 3)))
            guess = {"wait": predicted, "p10": predicted // 2, "p90": predicted * 2}
            steps += [("queue_joined", "front_desk", {"queue": queue, "predicted": guess}),
                      ("queue_result", "front_desk", {"queue": queue, "waited": waited,
                                                      "result": "bridged",
                                                      "predicted": guess})]
        steps += [("status", None, {"status": "completed", "duration": str(duration)}),
                  ("hangup", None, {"outcome": outcome})]
        for n, (kind, node, data) in enumerate(steps):
            event_rows.append({"event_id": uuid.uuid4().hex, "call_sid": sid,
                               "at": started + dt.timedelta(seconds=n * 3), "node": node,
                               "kind": kind, "data": data})
        if len(event_rows) >= 20_000:
            flush()
    flush()
    engine.dispose()
    return sids


def timed(client: Any, path: str, repeat: int) -> dict[str, Any]:
    times, size = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(path)
        body = response.get_data()
        times.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
        size = len(body)
    return {"path": path, "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(fresh_database(tmp))
        db.upgrade(url)
        redis, _ = stack.enter_context(redis_url(tmp))
        began = time.perf_counter()
        sids = seed(url, args.calls, rng)
        seeded = time.perf_counter() - began
        config = (load_config(ROOT / "config.toml", env={})
                  .with_section("server", instance_path=str(tmp / "instance"))
                  .with_section("redis", url=redis, key_prefix=f"bench:{uuid.uuid4().hex[:8]}:")
                  .with_section("database", url=url))
        app = create_app(config)
        app.extensions["ivr_admin"].users.create("bench", PASSWORD, "supervisor")
        client = app.test_client()
        client.get("/admin/login")
        with client.session_transaction() as session:
            token = session["csrf_token"]
        client.post("/admin/login", data={"username": "bench", "password": PASSWORD,
                                          "csrf_token": token})
        week, day = "from=2026-06-01&to=2026-06-07", "from=2026-06-03&to=2026-06-03"
        pages = [
            ("dashboard, a week", f"/admin/dashboard?{week}"),
            ("dashboard, a day (hourly)", f"/admin/dashboard?{day}"),
            ("calls, first page", f"/admin/calls/?{week}"),
            ("calls, abandoned only", f"/admin/calls/?{week}&outcome=abandoned"),
            ("calls, by last 4 digits", f"/admin/calls/?{week}&caller=5674"),
            ("calls, page 500", f"/admin/calls/?{week}&page=500"),
            ("one call's timeline", f"/admin/calls/{sids[len(sids) // 2]}"),
            ("CSV export, a day", f"/admin/calls/export.csv?{day}"),
        ]
        rows = [{"page": label, **timed(client, path, args.repeat)} for label, path in pages]
        app.extensions["ivr"].redis.close()
    kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{args.calls} calls over a week ({kind}, seeded in {seeded:.0f} s); "
          f"{args.repeat} requests per page, server side")
    print(f"{'page':<28} {'median ms':>10} {'max ms':>8} {'bytes':>10}")
    for row in rows:
        print(f"{row['page']:<28} {row['median_ms']:>10} {row['max_ms']:>8} {row['bytes']:>10}")
    path = save({"calls": args.calls, "database": hide_password(url), "pages": rows},
                "admin_pages")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
