"""Twilio's side of `<Start><Stream>`: the caller's audio sent to the server's websocket.

Messages are shaped as Twilio Media Streams sends them: `connected`, `start` (with the
Stream's Parameters as customParameters), `media` (20 ms of 8 kHz mu-law, base64) and
`stop`. The handshake carries X-Twilio-Signature over the wss:// URL, as Twilio signs it.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from simple_websocket import Client, ConnectionClosed

from speech.audio import decode_audio

from .model import SimulatorError, new_sid
from .transport import Transport, TransportError, twilio_signature
from .twiml_reader import StartStream

FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law, as Twilio sends it
MULAW_SILENCE = b"\xff"


def to_mulaw_8k(wav: bytes) -> bytes:
    """Raw 8 kHz mu-law from a WAV (what travels on the phone line and in the stream)."""
    audio = decode_audio(wav)
    if audio.sample_rate != 8000:
        raise SimulatorError(f"stream audio must be 8 kHz, not {audio.sample_rate} Hz "
                             "(sox in.wav -r 8000 out.wav)")
    return bytes(_ulaw_byte(s) for s in memoryview(audio.pcm).cast("h"))


def _ulaw_byte(sample: int) -> int:
    """G.711 mu-law encoding of one 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


class MediaStream:
    """One open stream; send audio with `send_audio`, end it with `stop`."""

    def __init__(self, verb: StartStream, transport: Transport, auth_token: str, *,
                 call_sid: str, account_sid: str):
        self.verb, self.name = verb, verb.name
        self.call_sid, self.account_sid = call_sid, account_sid
        self.stream_sid = new_sid("MZ")
        self.sequence, self.chunk, self.timestamp_ms = 0, 0, 0
        self.closed = False
        headers = {"X-Twilio-Signature": twilio_signature(auth_token, verb.url, {}),
                   "User-Agent": "Twilio.TmeWs/1.0 (ivr-simulator)"}
        try:
            self.ws: Any = Client.connect(transport.websocket_url(verb.url), headers=headers)
        except (OSError, ConnectionError, ConnectionClosed) as exc:
            raise TransportError(f"media stream to {verb.url}: {exc}") from None
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self._send({"event": "start", "start": {
            "accountSid": account_sid, "streamSid": self.stream_sid, "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": dict(verb.params),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})

    def send_audio(self, mulaw: bytes, *, realtime: bool = False) -> float:
        """Send raw mu-law in 20 ms frames; with `realtime`, paced as a phone line paces it.
        Returns the monotonic time the last frame left."""
        started = time.monotonic()
        for offset in range(0, len(mulaw), FRAME_BYTES):
            if self.closed:  # the server hung up the stream (it heard its answer)
                break
            frame = mulaw[offset:offset + FRAME_BYTES]
            self.chunk += 1
            self._send({"event": "media", "media": {
                "track": "inbound", "chunk": str(self.chunk),
                "timestamp": str(self.timestamp_ms),
                "payload": base64.b64encode(frame).decode("ascii")}})
            self.timestamp_ms += len(frame) // 8
            if realtime:
                due = started + (offset + len(frame)) / 8000
                time.sleep(max(0.0, due - time.monotonic()))
        return time.monotonic()

    def send_silence(self, seconds: float, *, realtime: bool = False) -> float:
        return self.send_audio(MULAW_SILENCE * int(8000 * seconds), realtime=realtime)

    def stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._send({"event": "stop", "stop": {"accountSid": self.account_sid,
                                                  "callSid": self.call_sid}})
            self.ws.close()
        except (ConnectionClosed, OSError):
            pass

    def _send(self, message: dict[str, Any]) -> None:
        self.sequence += 1
        message = {**message, "sequenceNumber": str(self.sequence)}
        if message["event"] != "connected":
            message["streamSid"] = self.stream_sid
        try:
            self.ws.send(json.dumps(message))
        except (ConnectionClosed, OSError):
            self.closed = True  # Twilio shrugs too: the call goes on without the stream
