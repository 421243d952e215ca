"""What `python -m bench.speech_latency` runs against: the IVR as `ivr serve` runs it, a
timestamping stand-in for Twilio's REST API, and Korean telephone clips with known ends.

Why a module of its own: the latency bench needs three things the other benches do not
(a server with a speech model and a stand-in it redirects calls through, clips whose end
of speech is known to the sample, and arrival times taken where Twilio would see them),
and each thing started here is a context manager, so every way out stops it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from bench.servers import ROOT, BenchError, free_port
from bench.speech_corpus import stat
from ivr_server.simulator import RecordingsServer
from ivr_server.simulator.transport import HttpResult, HttpTransport

TOKEN = "bench-latency-token-0000000000000000"
ACCOUNT_SID = "AC" + "b" * 32
RECORD_NUMBER, STREAM_NUMBER = "+15005550501", "+15005550502"
WORDS = {"reserve": "예약", "refund": "환불", "confirm": "확인", "info": "안내"}
ANSWERS = {key: f"Routed to {key}." for key in WORDS}
LEAD_SECONDS = 0.3  # line silence (or noise) before the caller speaks
TRAIL_SECONDS = 3.0  # after speech on the stream: room for the endpointer, then give up
RECORD_TAIL_SECONDS = 0.3  # what Twilio's trim-silence is assumed to leave after the speech
FLOW = """\
flow: {name}
language: ko-KR
speech: {speech}
start: menu
nodes:
  menu:
    type: menu
    prompt: 예약, 환불, 확인, 안내 중에서 말씀하세요.
    options:
{options}
    retries: 1
    fallback: bye
    allow_no_human: true
{answers}
  bye: {{ type: hangup, say: Goodbye. }}
"""


def flow_yaml(name: str, speech: str) -> str:
    options = "\n".join(f'      - {{ key: "{i}", label: {key}, say: [{word}], goto: {key} }}'
                        for i, (key, word) in enumerate(WORDS.items(), 1))
    answers = "\n".join(f"  {key}: {{ type: hangup, say: {ANSWERS[key]} }}" for key in WORDS)
    return FLOW.format(name=name, speech=speech, options=options, answers=answers)


# -- the stand-in for Twilio's REST API ----------------------------------------------------


class TimedApi(RecordingsServer):
    """RecordingsServer that notes when each request arrived (time.monotonic, before it is
    handled): the recording fetches of path 1 and the call redirects of path 2."""

    def __init__(self, account_sid: str, auth_token: str):
        super().__init__(account_sid, auth_token)
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic, method, path)

    def _answer(self, request: Request) -> Response:
        self.arrivals.append((time.monotonic(), request.method, request.path))
        return super()._answer(request)

    def arrived(self, method: str, contains: str, since: float) -> float | None:
        """When the first `method` request whose path contains `contains` arrived after
        `since` (None if none did)."""
        for at, m, path in list(self.arrivals):
            if at >= since and m == method and contains in path:
                return at
        return None


class TimedTransport(HttpTransport):
    """HttpTransport that keeps (monotonic start, end, method, url, params) of each request."""

    def __init__(self, base_url: str):
        session = requests.Session()
        session.trust_env = False  # loopback only: no proxy from the environment
        super().__init__(base_url, session=session, timeout=30.0)
        self.log: list[tuple[float, float, str, str, dict[str, str]]] = []

    def send(self, method: str, url: str, params: Mapping[str, str],
             headers: Mapping[str, str]) -> HttpResult:
        started = time.monotonic()
        result = super().send(method, url, params, headers)
        self.log.append((started, time.monotonic(), method, url, dict(params)))
        return result


# -- the server, as `ivr serve` runs it ----------------------------------------------------


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path
    db_url: str
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def ivr_server(tmp: Path, redis_url: str, prefix: str, api_base_url: str,
               model_path: Path) -> Iterator[Server]:
    """`python -m ivr_server serve` in a child process (werkzeug, threaded, as in production
    without a proxy), with both flows, the speech model and the stand-in as Twilio's API."""
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "latency_record.yaml").write_text(flow_yaml("latency_record", "record"))
    (flows / "latency_stream.yaml").write_text(flow_yaml("latency_stream", "stream"))
    config = tmp / "config.toml"
    config.write_text(f'[flows]\ndirectory = "{flows}"\ndefault = "latency_record"\n'
                      f'reload_interval = 60.0\n\n[flows.numbers]\n'
                      f'"{RECORD_NUMBER}" = "latency_record"\n'
                      f'"{STREAM_NUMBER}" = "latency_stream"\n')
    port = free_port()
    db_url = f"sqlite:///{tmp / 'ivr.sqlite3'}"
    env = {**os.environ, "REDIS_URL": redis_url, "IVR_REDIS_PREFIX": prefix,
           "DATABASE_URL": db_url, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
           "TWILIO_API_BASE_URL": api_base_url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "IVR_VOSK_MODEL": str(model_path), "IVR_INSTANCE_PATH": str(tmp / "instance"),
           "IVR_DEV_SKIP_SIGNATURES": "false", "IVR_TRUST_PROXY": "false",
           "IVR_CALLLOG_WRITE_BEHIND": "true"}
    for var in ("IVR_CONFIG", "IVR_FLOWS_DIR", "IVR_DEFAULT_FLOW"):
        env.pop(var, None)
    log_file = tmp / "server.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ivr_server", "--config", str(config), "serve",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    server = Server(port, process, log_file, db_url)
    try:
        _wait_listening(server, 60.0)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # `ivr serve` writes its call log, then exits
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _wait_listening(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"the IVR server exited at start:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"the IVR server did not listen within {timeout:.0f} s:\n"
                     f"{server.log_tail()}")


def server_events(db_url: str, kinds: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """call sid -> [{kind, data}] of the call log (read after the server stopped)."""
    from sqlalchemy import select

    from ivr_server.db import make_engine, make_session_factory
    from ivr_server.models import CallEvent

    engine = make_engine(db_url)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        with make_session_factory(engine)() as db:
            rows = db.scalars(select(CallEvent).where(CallEvent.kind.in_(kinds))
                              .order_by(CallEvent.at, CallEvent.id))
            for row in rows:
                out.setdefault(row.call_sid, []).append({"kind": row.kind,
                                                         "data": dict(row.data or {})})
    finally:
        engine.dispose()
    return out


# -- the clips -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyClip:
    """One utterance in one condition: raw mu-law for the stream (LEAD_SECONDS of line,
    the speech, TRAIL_SECONDS of line) and a mu-law WAV as Twilio would record it."""

    text: str
    expected: str
    voice: str
    speed: int
    condition: str  # "clean" or "snr20"
    speech_seconds: float
    stream_mulaw: bytes = field(repr=False)
    record_wav: bytes = field(repr=False)

    @property
    def speech_end_seconds(self) -> float:
        """Where in `stream_mulaw` the speech ends."""
        return LEAD_SECONDS + self.speech_seconds


CONDITIONS: dict[str, float | None] = {"clean": None, "snr20": 20.0}


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _utterance(folder: Path, index: int, text: str, key: str, voice: str,
               speed: int) -> list[LatencyClip]:
    """espeak-ng -> 8 kHz PCM16 with its own leading/trailing silence trimmed (so the end of
    speech is known) -> padded with line -> white noise at 20 dB SNR (measured on the
    speech, over the whole clip: line noise goes on after the caller stops) -> mu-law."""
    base = folder / f"u{index:03d}"
    tts, speech, padded = (base.with_suffix(s) for s in (".tts.wav", ".speech.wav", ".pad.wav"))
    _run("espeak-ng", "-v", voice, "-s", str(speed), "-w", str(tts), text)
    _run("sox", "-R", str(tts), "-r", "8000", "-c", "1", "-b", "16", str(speech),
         "silence", "1", "0.02", "1%", "reverse", "silence", "1", "0.02", "1%", "reverse")
    numbers = stat(speech)
    seconds, rms = numbers["Length (seconds)"], numbers["RMS amplitude"]
    _run("sox", "-R", str(speech), str(padded), "pad", str(LEAD_SECONDS), str(TRAIL_SECONDS))
    total = LEAD_SECONDS + seconds + TRAIL_SECONDS
    clips = []
    for condition, snr in CONDITIONS.items():
        source = padded
        if snr is not None:
            noise, source = base.with_suffix(".noise.wav"), base.with_suffix(f".{condition}.wav")
            _run("sox", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", str(noise),
                 "synth", f"{total:.4f}", "whitenoise")
            gain = rms / 10 ** (snr / 20) / stat(noise)["RMS amplitude"]
            _run("sox", "-R", "-m", "-v", "1", str(padded), "-v", f"{gain:.6f}", str(noise),
                 str(source))
        raw, wav = base.with_suffix(f".{condition}.ul"), base.with_suffix(f".{condition}.wav8")
        _run("sox", "-R", str(source), "-t", "raw", "-e", "mu-law", "-b", "8", str(raw))
        _run("sox", "-R", str(source), "-t", "wav", "-e", "mu-law", str(wav), "trim", "0",
             f"{LEAD_SECONDS + seconds + RECORD_TAIL_SECONDS:.4f}")
        clips.append(LatencyClip(text, key, voice, speed, condition, seconds, raw.read_bytes(),
                                 wav.read_bytes()))
    return clips


def make_clips(folder: Path, voices: list[str], speeds: list[int],
               workers: int = 2) -> list[LatencyClip]:
    """Every menu word in every voice and speed, clean and at 20 dB SNR. Deterministic."""
    specs = [(WORDS[key], key, voice, speed)
             for voice in voices for speed in speeds for key in WORDS]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        groups = pool.map(lambda a: _utterance(folder, a[0], *a[1]), enumerate(specs))
        return [clip for group in groups for clip in group]


# -- the caller's side of a media stream ---------------------------------------------------


class PacedSender(threading.Thread):
    """Sends a clip to an open MediaStream as a phone line does: frame k (20 ms) leaves when
    its 20 ms have been spoken, t0 + (k + 1) * 20 ms. Notes when the frame holding the last
    sample of speech left, and how late frames were against that schedule."""

    def __init__(self, stream: Any, mulaw: bytes, speech_end_seconds: float):
        super().__init__(daemon=True, name="paced-sender")
        self.stream, self.mulaw = stream, mulaw
        frame_bytes = 160
        self.frames = [mulaw[i:i + frame_bytes] for i in range(0, len(mulaw), frame_bytes)]
        self.speech_frame = max(0, (round(speech_end_seconds * 8000) - 1) // frame_bytes)
        self.halt = threading.Event()
        self.speech_end_sent: float | None = None
        self.max_late_ms = 0.0
        self.frames_sent = 0

    def run(self) -> None:
        t0 = time.monotonic()
        for k, frame in enumerate(self.frames):
            due = t0 + (k + 1) * 0.020
            if self.halt.wait(max(0.0, due - time.monotonic())) or self.stream.closed:
                return
            self.max_late_ms = max(self.max_late_ms, (time.monotonic() - due) * 1000)
            sent = self.stream.send_audio(frame)
            if self.stream.closed:  # the server hung up the stream: it heard its answer
                return
            self.frames_sent += 1
            if k == self.speech_frame:
                self.speech_end_sent = sent
