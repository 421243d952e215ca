"""Where a webhook's CPU goes inside the gunicorn workers (`--profile`).

Why: when the IVR misses its targets the useful answer is which step costs what, per
request, measured in the real server under load, not a guess. Each worker samples its own
CPU time (bench/sampler.py, SIGPROF on its CPU time); here the workers' samples are
merged, and each part of a webhook is shown as its share of the samples and as CPU
milliseconds per request: that share of the workers' CPU per request as /proc counted it
(the kernel checks CPU timers once per tick, so the sample count itself undercounts).
Sampling costs a few percent; waiting (for Redis, the database, the CRM) costs nothing,
as it should.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

# (label, frames): a sample counts for a part when a frame of its stack starts with one of
# the frame texts ("file:function", or "file:" for a whole module). Parts may overlap.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("whole request inside the worker (Flask + IVR)", ("flask/app.py:wsgi_app",)),
    ("  Flask session cookie (open + save)", ("flask/sessions.py:",)),
    ("  form parsing (werkzeug)", ("werkzeug/wrappers/request.py:_load_form_data",)),
    ("  observability hooks (log context, request metrics)",
     ("ivr_server/json_logs.py:", "ivr_server/metrics.py:")),
    ("  signature check (X-Twilio-Signature)", ("ivr_server/signature.py:is_signed",)),
    ("  session load (Redis GET)", ("ivr_server/sessions.py:load",)),
    ("  flow engine step", ("flows/engine.py:step",)),
    ("    of which templates and conditions (Jinja2)", ("flows/templates.py:",)),
    ("  CRM lookup (refused port)", ("ivr_server/lookup.py:__call__",)),
    ("  call log: previous_calls (SQL count)", ("ivr_server/calllog.py:previous_calls",)),
    ("  call log: records queued (call_started, add_events)",
     ("ivr_server/calllog.py:_guarded",)),
    ("  session save (JSON)", ("ivr_server/sessions.py:save",)),
    ("  Redis pipeline (session save + queued call log)",
     ("ivr_server/calllog.py:execute", "ivr_server/sessions.py:execute",
      "redis/client.py:execute")),
    ("  TwiML render", ("ivr_server/twiml.py:",)),
    ("  all Redis commands (pipelines included)", ("redis/",)),
    ("gunicorn: HTTP parsing and writing the response", ("gunicorn/http/",)),
    ("call-log writer thread, GIL waits, wake-ups (main thread idle)",
     ("gunicorn/workers/sync.py:wait",)),
)


def load(directory: Path) -> tuple[Counter[tuple[str, ...]], int, float] | None:
    """Every worker's samples merged: (stack counts, requests, seconds per sample)."""
    files = sorted(directory.glob("worker-*.json"))
    if not files:
        return None
    stacks: Counter[tuple[str, ...]] = Counter()
    requests, interval = 0, 0.0
    for f in files:
        data = json.loads(f.read_text())
        requests += data["requests"]
        interval = data["interval"]
        for stack, n in data["stacks"]:
            stacks[tuple(stack)] += n
    return stacks, requests, interval


def report(directory: Path, cpu_ms: float, top: int = 25) -> str:
    """The parts table and the top functions; `cpu_ms` is the workers' CPU per request."""
    loaded = load(directory)
    if loaded is None:
        return "no profile was written (too few requests per worker?)"
    stacks, requests, interval = loaded
    total = sum(stacks.values())
    if not requests or not total:
        return "no requests or no samples in the profile"
    per_request = cpu_ms / total  # ms of CPU per request that one sample stands for

    def cpu(prefixes: tuple[str, ...]) -> int:
        return sum(n for stack, n in stacks.items()
                   if any(f.startswith(prefixes) for f in stack))

    lines = [f"CPU profile: {total} samples over {requests} webhooks (sampled every "
             f"{interval * 1000:g} ms of CPU at most); {cpu_ms:.2f} ms of worker CPU per request",
             "",
             "| part | CPU ms/request | share |", "|---|---|---|"]
    for label, prefixes in PARTS:
        n = cpu(prefixes)
        lines.append(f"| {label} | {n * per_request:.3f} | {n / total:.0%} |")
    own: Counter[str] = Counter()
    for stack, n in stacks.items():
        own[stack[-1]] += n
    lines += ["", f"Top {top} functions by own CPU (samples in the function itself):",
              "| function | CPU ms/request | share |", "|---|---|---|"]
    for frame, n in own.most_common(top):
        lines.append(f"| {frame} | {n * per_request:.3f} | {n / total:.0%} |")
    return "\n".join(lines)
