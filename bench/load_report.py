"""The load bench's figures: latency and rate from the recorded webhooks, the error count
against its target of zero, and the Markdown table printed at the end (also in the JSON).

Why separate: what counts as an error, and which window a rate is measured over, are the
rules that make the table honest; they live next to the table that shows them.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .load_client import Sample
from .loadgen import percentiles
from .servers import ROOT

RESULTS = ROOT / "bench" / "results"
TARGET_RATIO, TARGET_P99_MS = 0.6, 25.0


def webhook_stats(samples: list[Sample], t0: float, end: float, ramp: float) -> dict[str, Any]:
    """Latency from each webhook's scheduled moment; the steady window is [t0 + ramp, end]
    (calls in progress have built up; arrivals still come), where the rate is measured."""
    steady = [s for s in samples if t0 + ramp <= s.due <= end]
    window = max(1e-9, end - t0 - ramp)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for s in steady:
        by_kind[s.kind].append((s.end - s.due) * 1000)
    cats = Counter(s.category for s in samples)
    return {
        "webhooks": len(samples),
        "steady_window_s": round(window, 1),
        "steady_webhooks": len(steady),
        "steady_rate": round(len(steady) / window, 1),
        "latency_ms": percentiles([(s.end - s.due) * 1000 for s in steady]),
        "server_ms": percentiles([(s.end - s.start) * 1000 for s in steady]),
        "latency_all_ms": percentiles([(s.end - s.due) * 1000 for s in samples]),
        "by_kind": {k: {"n": len(v), **percentiles(v)} for k, v in
                    sorted(by_kind.items(), key=lambda kv: -len(kv[1]))},
        "categories": dict(cats),
    }


def errors(p1: dict[str, Any], p2: dict[str, Any] | None,
           logs: dict[str, Any]) -> dict[str, int]:
    """Every kind of error the run can show; the target is 0 for each."""
    cats = p1["webhooks"]["categories"]
    checks, tw = p1["checks"], p1["twilio"]
    out = {
        "webhooks: non-2xx": cats.get("other_status", 0),
        "webhooks: 403": cats.get("forbidden", 0),
        "webhooks: safe-path TwiML": cats.get("safe_path", 0),
        "webhooks: socket errors": cats.get("socket_error", 0),
        "simulated calls that failed (bad TwiML, wrong state)": p1["client"]["failed_calls"],
        "calls unfinished when the drain ended": p1["client"]["unfinished"],
        "Twilio contract refusals (SMS, calls)": tw["sms_refused"] + tw["calls_refused"]
        + tw["other_refused"],
        "RQ jobs failed": sum(v for k, v in checks["redis"].items() if k.endswith("_failed")),
        "call-log errors (events, dead records)": checks["db"]["events"].get("error", 0)
        + checks["redis"]["calllog_dead"],
        "error lines in the server's log": logs["server_errors"],
        "error lines in the worker's log": logs["worker_errors"],
    }
    if p2 is not None:  # answers other than the intended TwiML are shown in the table
        for side in ("ivr", "bare"):
            e = p2[side]["result"]["errors"]
            out[f"throughput phase ({side}): safe path, 403, non-200, socket errors"] = \
                sum(e.values())
    return out


def _ms(p: dict[str, float]) -> str:
    return f"{p['p50']} / {p['p90']} / {p['p99']} / {p['max']}"


def table(res: dict[str, Any]) -> str:
    p1, p2, a = res["phase1"], res.get("phase2"), res["args"]
    w, c, cl = p1["webhooks"], p1["calls"], p1["client"]
    mark = {True: "PASS", False: "MISS"}
    lines = [f"### Production load: {a['minutes']:g} min at {a['rate']:.0f} webhooks/s, "
             f"{res['env']['server']}", "",
             "| | measured | target |", "|---|---|---|"]

    def row(name: str, value: object, target: str = "") -> None:
        lines.append(f"| {name} | {value} | {target} |")

    row("calls arrived (billing / agent / abandon / callback)",
        " / ".join(str(c["arrived"].get(p, 0)) for p in ("billing", "agent", "abandon",
                                                          "callback")))
    handled = {k: v for k, v in c["outcomes"].items() if k != "agent line"}
    row(f"calls handled ({sum(handled.values())}), by how they ended (callees: the calls "
        "back)", ", ".join(f"{k} {v}" for k, v in sorted(handled.items())))
    row("callbacks booked / placed by the worker / answered by the callee / completed",
        f"{c['callbacks_booked']} / {p1['twilio']['calls_accepted']} / "
        f"{c['outcomes'].get('callback answered', 0)} / "
        f"{p1['checks']['db']['callbacks'].get('completed', 0)}")
    sms = p1["checks"]["db"]["sms"]
    row("texts decided by the server / accepted by Twilio's contract (Prism) / still queued "
        "for the RQ worker at the end / dropped (the caller was off hold by then)",
        f"{sum(sms.values())} ({_sms_kinds(p1)}) / {p1['twilio']['sms_accepted']} / "
        f"{p1['checks']['redis'].get('rq_sms_queued', 0)} / "
        f"{sum(n for k, n in sms.items() if k.endswith(' refused'))}")
    row("agents on duty / callers they took / agent-line calls / briefed about another "
        "caller than they got (a brief is spoken only with one agent on duty)",
        f"{c['agents']} / {c['served']} / {c['agent_calls']} / "
        f"{p1['checks']['db']['events'].get('brief_mismatch', 0) // 2}")
    row(f"webhooks: all / steady window ({w['steady_window_s']:.0f} s)",
        f"{w['webhooks']} / {w['steady_webhooks']}")
    row("webhook rate in the steady window (req/s)", f"**{w['steady_rate']}**",
        f"{a['rate']:.0f}")
    ok_p99 = w["latency_ms"]["p99"] <= TARGET_P99_MS
    row("latency from the scheduled moment, p50 / p90 / p99 / max (ms)",
        f"**{_ms(w['latency_ms'])}**", f"p99 <= {TARGET_P99_MS:.0f} {mark[ok_p99]}")
    row("server time only (from the actual send), p50 / p90 / p99 / max (ms)",
        _ms(w["server_ms"]))
    app = w.get("in_app_ms")
    if app:
        row("time inside the server's app (its own /metrics histogram), p50 / p90 / p99 "
            "(ms, at most)", f"{app['p50']} / {app['p90']} / {app['p99']}")
    row("latency over the whole phase incl. ramp and drain, p99 / max (ms)",
        f"{w['latency_all_ms']['p99']} / {w['latency_all_ms']['max']}")
    top = list(w["by_kind"].items())[:8]
    row("by webhook, n: p50 / p99 (ms)", "; ".join(
        f"{k} {v['n']}: {v['p50']} / {v['p99']}" for k, v in top))
    if p2 is not None:
        ivr, bare = p2["ivr"]["result"], p2["bare"]["result"]
        ratio = p2["ratio"]
        row(f"max throughput, wrk -t{a['wrk_threads']} -c{a['connections']} "
            f"{ivr['seconds']:.0f} s: production server / bare Flask (req/s)",
            f"**{ivr['rps']:.0f}** / {bare['rps']:.0f}")
        valid = not (ivr["exhausted"] or bare["exhausted"])
        row("throughput ratio production / bare", f"**{ratio}**" + (
            "" if valid else " (INVALID: a replay ran out of requests before the end; "
            "raise --wrk-calls)"), f">= {TARGET_RATIO} {mark[valid and ratio >= TARGET_RATIO]}")
        row("intended answers under wrk (production / bare)",
            f"{ivr['intended']}/{ivr['answered']} / {bare['intended']}/{bare['answered']}")
    total = sum(res["errors"].values())
    row("errors (every kind below)", f"**{total}**", f"0 {mark[total == 0]}")
    for name, n in res["errors"].items():
        if n:
            row(f"- {name}", n)
    row("client: CPU of the simulated callers' threads / whole bench process "
        "(% of one core)", f"{cl['pool_cpu_pct']} / {cl['process_cpu_pct']}")
    row("client: steps started > 5 ms late / latest (ms); keep-alive reconnects",
        f"{cl['late_starts']} / {cl['max_late_ms']}; {cl['reconnects']}")
    procs = p1["processes"]
    other = procs["other_processes"]
    row("CPU taken by processes outside this run, and the hypervisor's steal (% of all CPUs)",
        f"{other['percent_of_all_cpus']} ({', '.join(other['top']) or '-'}); steal "
        f"{other['steal']}", "~0")
    lines += ["", f"| process | RSS peak / end (MB) | CPU in the steady window "
              f"({procs['cpu_window_s']:.0f} s, % of one core) |", "|---|---|---|"]
    names = list(dict.fromkeys([*procs["peak_mb"], *procs["cpu_pct"]]))
    for name in sorted(names, key=_process_order):
        peak, last = procs["peak_mb"].get(name), procs["last_mb"].get(name)
        memory = f"{peak} / {last}" if peak is not None else "-"
        lines.append(f"| {name} | {memory} | {procs['cpu_pct'].get(name, '-')} |")
    if res.get("notes"):
        lines += ["", *(f"Note: {n}" for n in res["notes"])]
    return "\n".join(lines)


def _process_order(name: str) -> tuple[int, str]:
    order = ("server", "gunicorn worker", "ivr worker", "redis", "PostgreSQL", "Prism",
             "bench")
    rank = next((i for i, prefix in enumerate(order) if name.startswith(prefix)), len(order))
    number = name.rsplit(" ", 1)[-1]
    return rank, f"{int(number):04d}" if number.isdigit() else name


def _sms_kinds(p1: dict[str, Any]) -> str:
    kinds: Counter[str] = Counter()
    for key, n in p1["checks"]["db"]["sms"].items():
        kinds[key.split(" ")[0]] += n
    return ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"


def save(result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"load-{stamp}.json"
    path.write_text(json.dumps({**result, "python": platform.python_version(), "at": stamp},
                               indent=2, default=str))
    return path
