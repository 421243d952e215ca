"""Decode telephone audio to 16-bit little-endian mono PCM for the recogniser.

Twilio delivers G.711 mu-law (recordings as WAV, Media Streams as raw 8 kHz
frames). The stdlib `wave` module cannot read mu-law/A-law WAVs and `audioop`
is deprecated, so RIFF parsing and G.711 decoding are done here with lookup
tables. Everything is bounded by a duration limit so a caller cannot make us
decode (or recognise) arbitrarily long audio.
"""

from __future__ import annotations

import struct
from array import array
from typing import NamedTuple

from .errors import AudioDecodeError

MAX_SECONDS = 30.0
WAVE_PCM = 0x0001
WAVE_ALAW = 0x0006
WAVE_MULAW = 0x0007
WAVE_EXTENSIBLE = 0xFFFE


class DecodedAudio(NamedTuple):
    """PCM16 little-endian mono samples, their rate, and duration in seconds."""

    pcm: bytes
    sample_rate: int
    duration_seconds: float


def _ulaw_sample(byte: int) -> int:
    """ITU-T G.711 mu-law expansion (same values as sox and audioop)."""
    byte = ~byte & 0xFF
    exponent = (byte >> 4) & 0x07
    magnitude = ((((byte & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return -magnitude if byte & 0x80 else magnitude


def _alaw_sample(byte: int) -> int:
    """ITU-T G.711 A-law expansion (same values as sox and audioop)."""
    byte ^= 0x55
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (
        exponent - 1
    )
    return magnitude if byte & 0x80 else -magnitude


ULAW_TABLE: tuple[int, ...] = tuple(_ulaw_sample(b) for b in range(256))
ALAW_TABLE: tuple[int, ...] = tuple(_alaw_sample(b) for b in range(256))


def _byte_tables(table: tuple[int, ...]) -> tuple[bytes, bytes]:
    lo = bytes(v & 0xFF for v in table)
    hi = bytes((v >> 8) & 0xFF for v in table)
    return lo, hi


_ULAW_LO_HI = _byte_tables(ULAW_TABLE)
_ALAW_LO_HI = _byte_tables(ALAW_TABLE)


def _expand(data: bytes, tables: tuple[bytes, bytes]) -> bytes:
    """Map each 8-bit code to a PCM16 LE sample with two C-speed translate passes."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(tables[0])
    out[1::2] = data.translate(tables[1])
    return bytes(out)


def ulaw_to_pcm16(data: bytes) -> bytes:
    """G.711 mu-law bytes -> PCM16 little-endian."""
    return _expand(bytes(data), _ULAW_LO_HI)


def alaw_to_pcm16(data: bytes) -> bytes:
    """G.711 A-law bytes -> PCM16 little-endian."""
    return _expand(bytes(data), _ALAW_LO_HI)


def _check_duration(frames: int, rate: int, max_seconds: float) -> float:
    seconds = frames / rate
    if seconds > max_seconds:
        raise AudioDecodeError(f"audio is {seconds:.1f} s long, the limit is {max_seconds:g} s")
    return seconds


def decode_mulaw(data: bytes, rate: int = 8000, max_seconds: float = MAX_SECONDS) -> DecodedAudio:
    """Raw mu-law mono bytes (a Twilio Media Streams payload, base64-decoded) -> PCM16."""
    if rate <= 0:
        raise AudioDecodeError(f"bad sample rate {rate}")
    seconds = _check_duration(len(data), rate, max_seconds)
    return DecodedAudio(ulaw_to_pcm16(data), rate, seconds)


def _downmix(pcm: bytes, channels: int) -> bytes:
    """Average interleaved PCM16 LE channels into one (Twilio dual-channel recordings)."""
    samples = array("h")
    samples.frombytes(pcm)
    if array("h", [1]).tobytes() != b"\x01\x00":
        samples.byteswap()
    mono = array("h", (
        sum(samples[i:i + channels]) // channels for i in range(0, len(samples), channels)
    ))
    if array("h", [1]).tobytes() != b"\x01\x00":
        mono.byteswap()
    return mono.tobytes()


def _chunks(data: bytes) -> dict[bytes, bytes]:
    """The first occurrence of each RIFF chunk, by id."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioDecodeError("not a WAV file (no RIFF/WAVE header)")
    found: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"data" and len(body) < size:
            # Streams sometimes write 0 or a placeholder size; take what is there.
            body = data[pos + 8:]
        found.setdefault(cid, body)
        if cid == b"data":
            break
        pos += 8 + size + (size & 1)
    return found


def decode_wav(data: bytes, max_seconds: float = MAX_SECONDS) -> DecodedAudio:
    """A WAV file in PCM16, mu-law or A-law (any channel count) -> mono PCM16."""
    chunks = _chunks(data)
    fmt, body = chunks.get(b"fmt "), chunks.get(b"data")
    if fmt is None or len(fmt) < 16:
        raise AudioDecodeError("WAV file has no valid fmt chunk")
    if body is None:
        raise AudioDecodeError("WAV file has no data chunk")
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == WAVE_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # first two bytes of the SubFormat GUID
    if channels < 1 or rate <= 0:
        raise AudioDecodeError(f"WAV file has {channels} channels at {rate} Hz")
    width = {WAVE_PCM: 2, WAVE_MULAW: 1, WAVE_ALAW: 1}.get(tag)
    if width is None or (tag == WAVE_PCM and bits != 16) or (tag != WAVE_PCM and bits != 8):
        raise AudioDecodeError(f"unsupported WAV encoding: format {tag:#06x}, {bits} bits")
    frame = width * channels
    frames = len(body) // frame
    seconds = _check_duration(frames, rate, max_seconds)
    body = body[:frames * frame]
    if tag == WAVE_MULAW:
        pcm = ulaw_to_pcm16(body)
    elif tag == WAVE_ALAW:
        pcm = alaw_to_pcm16(body)
    else:
        pcm = body
    if channels > 1:
        pcm = _downmix(pcm, channels)
    return DecodedAudio(pcm, rate, seconds)


def decode_audio(
    data: bytes,
    *,
    raw_mulaw_rate: int | None = None,
    max_seconds: float = MAX_SECONDS,
) -> DecodedAudio:
    """WAV by its header; headerless bytes only if the caller says they are raw mu-law."""
    if data[:4] == b"RIFF":
        return decode_wav(data, max_seconds)
    if raw_mulaw_rate is not None:
        return decode_mulaw(data, raw_mulaw_rate, max_seconds)
    raise AudioDecodeError("unrecognised audio: not a WAV file and not declared raw mu-law")
