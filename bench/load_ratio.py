"""Phase 2 of the load bench: the production server's maximum webhook throughput against a
bare Flask endpoint returning fixed TwiML, same gunicorn worker settings, back to back.

Reuses the webhook bench's parts: signed calls (bench/calls.py: incoming -> press 1 -> an
8-digit account -> Dial billing, whose node names and turns bench/flows/load.yaml keeps),
replayed by wrk in a closed loop (bench/wrk.py), every answer classified so a run that
was fast because it served 403s or the safe path is caught.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import store, wrk
from bench.calls import EXPECTED, Signer, interleave
from bench.servers import Gunicorn, GunicornSettings

INTENDED = set(EXPECTED.values())
NOT_OK = ("safe_path", "forbidden", "other_status")


@dataclass
class Throughput:
    rps: float
    requests: int
    seconds: float
    intended: int  # the IVR: the TwiML each step should get; bare: any 200
    answered: int
    errors: dict[str, int]  # safe path, 403, other status, socket errors
    latency_ms: dict[str, float]
    exhausted: bool


def script(tmp: Path, port: int, token: str, run_id: str, batch: str, calls: int,
           threads: int, connections: int) -> Path:
    """Per wrk thread its share of `calls`, each call's steps far apart (as bench.webhooks)."""
    signer = Signer(token, f"http://127.0.0.1:{port}", run_id)
    lag = max(100, 4 * connections // threads)
    per_thread = []
    for tid in range(threads):
        n = len(range(tid, calls, threads))
        per_thread.append([signer.request(kind, batch, call * threads + tid)
                           for kind, call in interleave(n, lag)])
    return wrk.prepare(tmp / f"wrk-{batch}", per_thread, f"127.0.0.1:{port}")


def measure(wrk_path: str, replay: Path, port: int, seconds: float, threads: int,
            connections: int, *, ivr: bool) -> Throughput:
    res = wrk.run(wrk_path, replay, f"http://127.0.0.1:{port}", threads, connections, seconds)
    cats = res.categories
    answered = sum(cats.values())
    intended = sum(v for k, v in cats.items() if k in INTENDED) if ivr else \
        sum(v for k, v in cats.items() if k not in NOT_OK)
    errors = {k: cats.get(k, 0) for k in NOT_OK}
    errors["socket_errors"] = sum(res.socket_errors.values())
    return Throughput(res.rps, res.requests, res.seconds, intended, answered, errors,
                      res.latency_ms, res.exhausted)


def ivr_throughput(wrk_path: str, tmp: Path, port: int, token: str, run_id: str,
                   args: Any, redis_url: str, prefix: str) -> dict[str, Any]:
    """The running production server: a 2 s warm-up replay, then the measured one; then the
    call log's write-behind queue must drain."""
    t, c = args.wrk_threads, args.connections
    warm = script(tmp, port, token, run_id, "w", max(2000, args.wrk_calls // 10), t, c)
    measure(wrk_path, warm, port, 2, t, c, ivr=True)
    replay = script(tmp, port, token, run_id, "t", args.wrk_calls, t, c)
    out = measure(wrk_path, replay, port, args.wrk_seconds, t, c, ivr=True)
    drained = store.wait_drained(redis_url, prefix, timeout=60)
    return {"result": asdict(out), "drain_s": drained, "replay": str(replay)}


def bare_throughput(wrk_path: str, tmp: Path, replay: Path, workers: int, threads: int,
                    args: Any, env: dict[str, str]) -> dict[str, Any]:
    """bench/bare_app.py under the same gunicorn settings, replaying the same requests (its
    answer does not depend on them, nor on their Host header) round and round: sized for
    the IVR, they would run out before a faster server's 15 s were over, and the rate,
    counted over the whole run, would understate it."""
    from bench.load_rig import free_port

    settings = GunicornSettings(workers, "gthread", threads)
    port = free_port()
    t, c = args.wrk_threads, args.connections
    looping = wrk.wrapping(replay)
    with Gunicorn("bench.bare_app:app", port, env, settings, tmp / "bare.log") as g:
        measure(wrk_path, looping, port, 2, t, c, ivr=False)
        out = measure(wrk_path, looping, port, args.wrk_seconds, t, c, ivr=False)
        rss = g.worker_rss_mb()
    return {"result": asdict(out), "label": f"gunicorn bench.bare_app:app ({settings.label})",
            "worker_rss_mb": rss}

