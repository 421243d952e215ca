"""A simulated caller's recorded answers: audio at a <Record>, delivered as Twilio delivers it.

Twilio posts the Record action with RecordingUrl (on api.twilio.com), RecordingSid,
RecordingDuration and Digits; the server then fetches the audio from the API. Here the
audio is registered with a loopback RecordingsServer that stands in for that API.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from . import queues
from . import twiml_reader as tw
from .media import to_mulaw_8k
from .model import SimulatorError, new_sid
from .recordings import RecordingsServer

if TYPE_CHECKING:
    from .caller import SimulatedCall

Audio = bytes | Path | str  # WAV bytes, a WAV file, or text to synthesize
INSTALL_HINT = "apt-get install espeak-ng sox"
TRAILING_SILENCE = 1.5  # seconds of line silence after speaking: the recogniser's endpoint
REDIRECT_WAIT = 10.0  # seconds the server may take to redirect the call after speech (an
# upper bound: a redirect ends the wait at once; on a busy 2-core machine 5 s was too short)


def synthesize(text: str, voice: str = "en") -> bytes:
    """`text` spoken by espeak-ng (`voice`: ko, en, de, ...) as 8 kHz mono mu-law WAV."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise SimulatorError(f"speaking text needs {' and '.join(missing)}: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="ivr-say-") as tmp:
        raw, out = Path(tmp) / "tts.wav", Path(tmp) / "phone.wav"
        for args in (["espeak-ng", "-v", voice, "-w", str(raw), text],
                     ["sox", "-R", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law",
                      str(out)]):
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SimulatorError(f"{args[0]} failed ({done.returncode}): "
                                     f"{done.stderr.strip()[:300]}")
        return out.read_bytes()


def audio_bytes(audio: Audio, voice: str = "en") -> bytes:
    """The WAV to deliver: bytes as they are, a Path read, a str synthesized."""
    if isinstance(audio, bytes):
        return audio
    if isinstance(audio, Path):
        try:
            return audio.read_bytes()
        except OSError as exc:
            raise SimulatorError(f"cannot read {audio}: {exc}") from None
    return synthesize(audio, voice)


def wav_seconds(data: bytes) -> float:
    """Length of a RIFF/WAVE file from its header (any encoding, mu-law included)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SimulatorError("the audio is not a WAV file (RIFF/WAVE)")
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            byte_rate = struct.unpack("<I", data[pos + 16:pos + 20])[0]
        elif chunk == b"data":
            size = min(size, len(data) - pos - 8)  # streamed WAVs may carry a bogus size
            return size / byte_rate if byte_rate else 0.0
        pos += 8 + size + (size & 1)
    raise SimulatorError("the WAV file has no data chunk")


def say(call: SimulatedCall, audio: Audio, voice: str = "en", *,
        realtime: bool = False) -> list[str]:
    """Answer the <Record> with `audio`. At the keys-only <Gather> before it, first stay
    silent until it times out, as a caller who speaks instead of pressing does. While a
    <Stream> is open (path 2), the audio goes down the stream instead."""
    pending = call._pending
    if isinstance(pending, tw.Gather) and call.streams:
        return say_on_stream(call, pending, audio, voice, realtime=realtime)
    if isinstance(pending, tw.Enqueue):
        return say_on_hold(call, audio, voice, realtime=realtime)
    if isinstance(pending, tw.Gather) and "speech" not in pending.input:
        if pending.action_on_empty_result or not call._verbs \
                or not isinstance(call._verbs[0], tw.Record):
            raise SimulatorError("cannot say anything: the prompt takes keys only and records "
                                 "no answer (does the server have a speech model, and does "
                                 "this menu list spoken synonyms?)")
        call.silence()
    rec: tw.Record = call._expect(tw.Record, "say something")
    data = audio_bytes(audio, voice)
    seconds = wav_seconds(data)
    if call.recordings is None:  # nobody gave one: this call owns its own
        call.recordings, call._owns_recordings = \
            RecordingsServer(call.account_sid, call.auth_token), True
    sid, url = call.recordings.add(data)
    label = audio if isinstance(audio, str) else \
        str(audio) if isinstance(audio, Path) else f"({len(data)} bytes of audio)"
    call._note("caller", "speak", f"{label} [recording {seconds:.1f}s]")
    call.elapsed += seconds + rec.timeout  # the silence that ends it
    call.last_recording_sid = sid
    return post_record(call, rec, {"RecordingSid": sid, "RecordingUrl": url,
                                   "RecordingDuration": str(max(1, round(seconds))),
                                   "Digits": ""})


def say_on_stream(call: SimulatedCall, gather: tw.Gather, audio: Audio, voice: str, *,
                  realtime: bool = False) -> list[str]:
    """Speak into the open media stream while the prompt waits. If the server hears an
    answer it redirects the live call through the REST API (the `recordings` stand-in
    receives it) and the call follows; if not, the prompt times out as it would on Twilio."""
    redirect = _stream_speech(call, audio, voice, realtime, "streamed")
    if redirect is not None:
        call._pending = None
        call._note("twilio", "redirect", redirect[1])
        call._load(redirect[0], redirect[1], {})
        return call._run()
    call.elapsed += gather.timeout
    call._gather_empty(gather, "")
    return call._run()


def say_on_hold(call: SimulatedCall, audio: Audio, voice: str, *,
                realtime: bool = False) -> list[str]:
    """Speak while on hold. Only a stream started before the <Enqueue> hears it; if the
    server takes the answer it redirects the call out of the queue and the call follows,
    else hold goes on."""
    if not call.streams:
        raise SimulatorError("nobody listens on hold: no <Stream> was started before the "
                             "<Enqueue> (a call back offer with words, and speech: stream?)")
    start = len(call.heard)
    redirect = _stream_speech(call, audio, voice, realtime, "streamed on hold")
    if redirect is None:
        return []
    queues.redirected_out(call)
    call._note("twilio", "redirect", redirect[1])
    call._load(redirect[0], redirect[1], {})
    call._run()
    return call.heard[start:]


def _stream_speech(call: SimulatedCall, audio: Audio, voice: str, realtime: bool,
                   how: str) -> tuple[str, str] | None:
    """Send the audio down the latest stream, then the redirect the server made, if any."""
    data = audio_bytes(audio, voice)
    mulaw = to_mulaw_8k(data)
    stream = list(call.streams.values())[-1]
    label = audio if isinstance(audio, str) else \
        str(audio) if isinstance(audio, Path) else f"({len(data)} bytes of audio)"
    call._note("caller", "speak", f"{label} [{how} {len(mulaw) / 8000:.1f}s]")
    stream.send_audio(mulaw, realtime=realtime)
    stream.send_silence(TRAILING_SILENCE, realtime=realtime)
    call.elapsed += len(mulaw) / 8000 + TRAILING_SILENCE
    return call.recordings.wait_redirect(call.call_sid, REDIRECT_WAIT) \
        if call.recordings is not None else None


def record(call: SimulatedCall, seconds: int, finish_key: str) -> list[str]:
    """A message of `seconds` (no audio behind it), ended by `finish_key` or by silence."""
    rec: tw.Record = call._expect(tw.Record, "leave a recording")
    call._note("caller", "record", f"{seconds}s")
    call.elapsed += seconds
    sid = new_sid("RE")
    params = {"RecordingSid": sid, "RecordingDuration": str(seconds),
              "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/"
                              f"{call.account_sid}/Recordings/{sid}"}
    if finish_key:
        params["Digits"] = finish_key
    return post_record(call, rec, params)


def post_record(call: SimulatedCall, rec: tw.Record, params: dict[str, str]) -> list[str]:
    """Twilio posts the Record's action (or the current URL) and follows the answer."""
    call._pending = None
    call._load(rec.method, call._abs(rec.action) if rec.action else call._url, params)
    return call._run()

