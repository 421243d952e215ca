"""Where a webhook's time goes inside the gunicorn workers (`--profile`).

Only the request threads are profiled: the call-log writer thread (write-behind) is not,
its cost shows in the benchmark's worker CPU per request.

Why: when the IVR misses its targets the useful answer is which step costs what, per
request, measured in the real server under load, not a guess. Each worker profiles
every request with cProfile (see ivr_wsgi.profiled); here the per-worker stats are
merged and the time of each part of a webhook is divided by the requests served.
"""

from __future__ import annotations

import io
import pstats
from pathlib import Path

# (label, file suffix, function): cumulative time of each, per request.
PARTS = (
    ("whole request inside the worker (Flask + IVR)", "flask/app.py", "wsgi_app"),
    ("signature check (X-Twilio-Signature)", "ivr_server/signature.py", "is_signed"),
    ("session load (Redis GET)", "ivr_server/sessions.py", "load"),
    ("flow engine step", "flows/engine.py", "step"),
    ("CRM lookup (refused port)", "ivr_server/lookup.py", "__call__"),
    ("call log: previous_calls (SQL count)", "ivr_server/calllog.py", "previous_calls"),
    ("call log: call_started (queue or SQL write)", "ivr_server/calllog.py", "call_started"),
    ("call log: add_events (queue or SQL write)", "ivr_server/calllog.py", "add_events"),
    ("  of which SQLAlchemy session.execute", "sqlalchemy/orm/session.py", "execute"),
    ("  of which commit", "sqlalchemy/orm/session.py", "commit"),
    ("Redis pipeline (session save + queued call log)", "redis/client.py", "execute"),
    ("TwiML render", "ivr_server/twiml.py", "render"),
    ("all Redis commands outside pipelines", "redis/client.py", "execute_command"),
    ("all SQL statements (SQLAlchemy Connection.execute)", "sqlalchemy/engine/base.py",
     "execute"),
)


def merged(directory: Path) -> pstats.Stats | None:
    files = sorted(directory.glob("worker-*.prof"))
    if not files:
        return None
    stats = pstats.Stats(str(files[0]), stream=io.StringIO())
    for f in files[1:]:
        stats.add(str(f))
    return stats


def report(directory: Path, top: int = 20) -> str:
    stats = merged(directory)
    if stats is None:
        return "no profile was written (too few requests per worker?)"
    table = stats.stats  # type: ignore[attr-defined]
    requests = sum(nc for (file, _, fn), (_, nc, *_rest) in table.items()
                   if file.endswith("flask/app.py") and fn == "wsgi_app")
    if not requests:
        return "no requests in the profile"
    lines = [f"Profile of {requests} webhooks (cProfile in every worker; it inflates "
             "absolute times, compare the shares)", "",
             "| part | ms/request | share |", "|---|---|---|"]
    whole = None
    for label, suffix, func in PARTS:
        cum = sum(ct for (file, _, fn), (_, _, _, ct, _) in table.items()
                  if file.endswith(suffix) and fn == func)
        whole = whole or cum
        lines.append(f"| {label} | {cum / requests * 1000:.2f} | {cum / whole:.0%} |")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    body = out.getvalue()
    start = body.find("   ncalls")
    lines += ["", f"Top {top} functions by own time:", body[start:] if start >= 0 else body]
    return "\n".join(lines)
