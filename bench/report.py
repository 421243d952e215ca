"""The verdict, the Markdown tables and the JSON file of a run.

Why separate: the numbers are only worth reporting next to the proof that the server did
the intended work, so the correctness rules live here with the tables that show them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

from .calls import EXPECTED
from .loadgen import OpenLoopResult
from .servers import ROOT
from .wrk import WrkResult

RESULTS = ROOT / "bench" / "results"
MIN_INTENDED = 0.999  # "~100%": one odd answer in a thousand already fails the run
TARGET_RATIO, TARGET_P99_MS = 0.6, 25.0
INTENDED = set(EXPECTED.values())


def hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - display only (redis URLs are not SQLAlchemy URLs)
        return url.split("@")[-1] if "@" in url else url


def preamble(env: dict[str, Any]) -> str:
    offset = env["clock_offset_s"]
    shift = (f"server clock shifted +{offset / 3600:.1f} h into the demo's office hours"
             if offset else "demo flow is in office hours now (no clock shift)")
    return (f"IVR webhook benchmark, run {env['run_id']} on {env['cpus']} CPUs\n"
            f"  Redis: {env['redis']} (key prefix {env['redis_prefix']})\n"
            f"  Database: {env['database']}\n  CRM lookup: {env['crm']}\n  Clock: {shift}\n"
            f"  Calls: company flow, incoming -> press 1 -> 8-digit Luhn account -> Dial billing")


def wrk_intended(w: WrkResult) -> tuple[int, int]:
    return sum(v for k, v in w.categories.items() if k in INTENDED), sum(w.categories.values())


def verdict(ivr: dict[str, Any], bare: dict[str, Any], args: Any) -> dict[str, Any]:
    lat: OpenLoopResult = ivr["latency"]
    tp: WrkResult = ivr["throughput"]
    ok_wrk, n_wrk = wrk_intended(tp)
    log, slack = ivr["call_log"], args.connections
    problems = []
    warm: OpenLoopResult = ivr["warmup"]
    if warm.intended < warm.sent:
        problems.append(f"warm-up (first requests to fresh workers): {warm.intended}/"
                        f"{warm.sent} intended {warm.categories}")
    if lat.intended < MIN_INTENDED * lat.sent:
        problems.append(f"open loop: {lat.intended}/{lat.sent} intended {lat.categories}")
    if n_wrk == 0 or ok_wrk < MIN_INTENDED * n_wrk:
        problems.append(f"wrk: {ok_wrk}/{n_wrk} intended {tp.categories}")
    if tp.exhausted:
        problems.append("wrk ran out of calls (replays would be stale): raise --calls")
    pairs = (("calls_started", "gather_main_menu"), ("pressed_billing", "gather_account"),
             ("account_collected", "dial_billing"))
    for logged, answered in pairs:
        # Rows may exceed answers by what was in flight when wrk stopped; one fewer: a wrk
        # without the probe request() call sends its first request twice (a harmless retry).
        if not -1 <= log[logged] - tp.categories[answered] <= slack:
            problems.append(f"call log {logged}={log[logged]} vs {tp.categories[answered]} "
                            f"{answered} answers")
    if ivr["drain_s"] is None:
        problems.append("the call log's write-behind queue did not drain within 30 s")
    if log["errors"] or ivr["backlog"]["backlog"] or ivr["backlog"]["dead"]:
        problems.append(f"call log errors {log['errors']}, backlog {ivr['backlog']}")
    ratio = tp.rps / bare["throughput"].rps if bare["throughput"].rps else 0.0
    return {"correct": not problems, "problems": problems, "ratio": round(ratio, 2),
            "ratio_ok": ratio >= TARGET_RATIO,
            "p99_ok": lat.latency_ms["p99"] <= TARGET_P99_MS}


def _lat(r: OpenLoopResult) -> str:
    m = r.latency_ms
    return f"{m['p50']} / {m['p90']} / {m['p99']} / {m['max']}"


def _errors(w: WrkResult, r: OpenLoopResult | None) -> str:
    c = w.categories
    sock = sum(w.socket_errors.values()) + (r.categories.get("socket_error", 0) if r else 0)
    non200 = c["other_status"] + (r.categories.get("other_status", 0) if r else 0)
    return f"{c['safe_path']} / {c['forbidden']} / {non200} / {sock}"


def _foreign(side: dict[str, Any]) -> str:
    parts = [f"{f['percent_of_all_cpus'] + f['steal']:.0f}" for f in side["usage"]]
    top = side["usage"][0]["top"] or side["usage"][-1]["top"]
    steal = max(f["steal"] for f in side["usage"])
    top = [*top, f"steal {steal}%"] if steal >= 1 else top
    return " / ".join(parts) + (f" ({', '.join(top)})" if top else "")


def _cpu(side: dict[str, Any], key: str = "worker_cpu_ms") -> str:
    return " / ".join(str(u[key]) for u in side["usage"])


def main_table(res: dict[str, Any]) -> str:
    ivr, bare, v, a = res["ivr"], res["bare"], res["verdict"], res["args"]
    lat, blat = ivr["latency"], bare["latency"]
    tp, btp = ivr["throughput"], bare["throughput"]
    ok_wrk, n_wrk = wrk_intended(tp)
    mark = {True: "PASS", False: "MISS"}
    rows = [
        ("| | IVR server | bare Flask | target |", "|---|---|---|---|"),
        (f"| max throughput, wrk -t{a['threads']} -c{a['connections']} {tp.seconds:.0f} s "
         f"| **{tp.rps:.0f} req/s** | {btp.rps:.0f} req/s | IVR/bare = **{v['ratio']}** "
         f"(>= {TARGET_RATIO}) {mark[v['ratio_ok']]} |",),
        (f"| latency at {a['rate']:.0f} req/s open loop, p50 / p90 / p99 / max (ms) "
         f"| **{_lat(lat)}** | {_lat(blat)} | p99 <= {TARGET_P99_MS:.0f} ms "
         f"{mark[v['p99_ok']]} |",),
        (f"| server time only (from actual send), p99 (ms) | {lat.service_ms['p99']} "
         f"| {blat.service_ms['p99']} | |",),
        ("| server time by step, p50 / p99 (ms): incoming; menu key; account number | "
         + "; ".join(f"{v['p50']} / {v['p99']}" for v in lat.by_kind_ms.values()) + " | | |",),
        (f"| intended TwiML: open loop / wrk | {lat.intended}/{lat.sent} / {ok_wrk}/{n_wrk} "
         f"| {blat.intended}/{blat.sent} 200 OK | ~100% |",),
        (f"| safe path / 403 / other non-200 / socket errors | {_errors(tp, lat)} "
         f"| {_errors(btp, blat)} | 0 |",),
        (f"| CPU per request, open loop / wrk (ms): gunicorn workers | {_cpu(ivr)} "
         f"| {_cpu(bare)} | |",),
        (f"| CPU per request, open loop / wrk (ms): Redis (+ PostgreSQL) server processes "
         f"| {_cpu(ivr, 'services_cpu_ms')} | | |",),
        (f"| RSS per worker (MB) | {', '.join(map(str, ivr['rss_mb']))} "
         f"| {', '.join(map(str, bare['rss_mb']))} | |",),
        ("| CPU taken by other processes + hypervisor steal, open loop / wrk (%) "
         f"| {_foreign(ivr)} | {_foreign(bare)} | ~0 |",),
    ]
    log = ivr["call_log"]
    lines = [f"\n### Webhook benchmark: {ivr['settings'].label} per server\n"]
    lines += [cell for row in rows for cell in row]
    floor = res.get("floor")
    if floor:
        ftp = floor["throughput"]
        lines.append(f"\nFloor (bare Flask + only a webhook's two Redis round trips, same "
                     f"settings): {ftp.rps:.0f} req/s = {ftp.rps / btp.rps:.2f} of bare, "
                     f"worker CPU {_cpu(floor)} ms/request (open loop / wrk), p99 at "
                     f"{a['rate']:.0f} req/s {floor['latency'].latency_ms['p99']} ms; "
                     f"IVR/floor = {tp.rps / ftp.rps:.2f}")
    lines.append(f"\nCall log (wrk calls, after the write-behind queue drained in "
                 f"{ivr['drain_s']} s): {log}; Redis backlog {ivr['backlog']}; "
                 f"client fell behind {lat.late_starts}x, waited for a previous step "
                 f"{lat.order_waits}x; cleaned {res['cleaned']}")
    busiest = max(f["percent_of_all_cpus"] + f["steal"] for side in (ivr, bare)
                  for f in side["usage"])
    if busiest > 10:
        lines.append(f"WARNING: other processes took up to {busiest:.0f}% of the CPUs during a "
                     "measurement (incl. steal): the numbers are pessimistic; run again on a "
                     "quiet machine.")
    lines.append("Benchmark " + ("VALID" if v["correct"] else
                                 "FAILED: " + "; ".join(v["problems"])))
    return "\n".join(lines)


def sweep_table(rows: list[dict[str, Any]]) -> str:
    out = ["\n| gunicorn | wrk req/s | p50 / p90 / p99 / max at rate (ms) "
           "| intended: warm-up, open loop, wrk "
           "| CPU ms/request | RSS/worker MB | other CPU % |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ok, n = wrk_intended(r["throughput"])
        lat = r["latency"]
        out.append(f"| {r['settings'].label} | {r['throughput'].rps:.0f} | {_lat(lat)} "
                   f"| {r['warmup'].intended}/{r['warmup'].sent}, {lat.intended}/{lat.sent}, "
                   f"{ok}/{n} | "
                   f"{_cpu(r)} | "
                   f"{', '.join(map(str, r['rss_mb']))} | {_foreign(r)} |")
    return "\n".join(out)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def save(result: dict[str, Any], name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    result = {**result, "python": platform.python_version(), "at": stamp}
    path.write_text(json.dumps(result, default=_plain, indent=2))
    return path
