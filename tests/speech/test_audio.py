"""Audio decoding: G.711 tables checked against sox, WAV parsing, limits and garbage."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from speech.audio import (
    alaw_to_pcm16,
    decode_audio,
    decode_mulaw,
    decode_wav,
    ulaw_to_pcm16,
)
from speech.errors import AudioDecodeError, SpeechError

from . import audio_fixtures
from .audio_fixtures import TelephoneAudio

phone_audio = audio_fixtures.phone_audio


def _sox_expand(tmp_path: Path, encoding: str) -> bytes:
    """sox's own G.711 expansion of every code 0..255: an independent reference table."""
    src, out = tmp_path / "codes.raw", tmp_path / f"{encoding}.raw"
    src.write_bytes(bytes(range(256)))
    subprocess.run(["sox", "-t", "raw", "-r", "8000", "-c", "1", "-b", "8", "-e", encoding,
                    str(src), "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", str(out)],
                   check=True)
    return out.read_bytes()


def test_mulaw_table_matches_sox(phone_audio: TelephoneAudio, tmp_path: Path) -> None:
    assert ulaw_to_pcm16(bytes(range(256))) == _sox_expand(tmp_path, "mu-law")


def test_alaw_table_matches_sox(phone_audio: TelephoneAudio, tmp_path: Path) -> None:
    assert alaw_to_pcm16(bytes(range(256))) == _sox_expand(tmp_path, "a-law")


def test_mulaw_known_values() -> None:
    samples = struct.unpack("<4h", ulaw_to_pcm16(bytes([0x00, 0x7F, 0x80, 0xFF])))
    assert samples == (-32124, 0, 32124, 0)


def test_raw_mulaw_frames() -> None:
    decoded = decode_mulaw(b"\xff" * 160)  # one 20 ms Media Streams frame of silence
    assert decoded == (b"\x00\x00" * 160, 8000, 0.02)


def test_mulaw_wav_equals_sox_pcm(phone_audio: TelephoneAudio) -> None:
    mulaw = decode_wav(phone_audio.mulaw_wav("예약").read_bytes())
    pcm = decode_wav(phone_audio.pcm_wav("예약").read_bytes())
    assert mulaw.sample_rate == pcm.sample_rate == 8000
    assert mulaw.pcm == pcm.pcm
    assert 0.3 < mulaw.duration_seconds < 3


def test_pcm_wav_matches_wave_module(phone_audio: TelephoneAudio) -> None:
    import wave

    path = phone_audio.pcm_wav("환불")
    with wave.open(str(path)) as w:
        frames = w.readframes(w.getnframes())
    assert decode_audio(path.read_bytes()).pcm == frames


def _wav(tag: int, channels: int, rate: int, bits: int, data: bytes) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd chunk: padded
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_stereo_pcm_is_downmixed() -> None:
    data = struct.pack("<4h", 100, 300, -100, -300)
    decoded = decode_wav(_wav(1, 2, 8000, 16, data))
    assert struct.unpack("<2h", decoded.pcm) == (200, -200)


def test_alaw_wav() -> None:
    decoded = decode_wav(_wav(6, 1, 8000, 8, bytes([0xD5, 0x55])))
    assert struct.unpack("<2h", decoded.pcm) == (8, -8)


def test_too_long_is_refused() -> None:
    with pytest.raises(AudioDecodeError, match="limit"):
        decode_wav(_wav(7, 1, 8000, 8, b"\xff" * 8000 * 31))
    with pytest.raises(AudioDecodeError, match="limit"):
        decode_mulaw(b"\xff" * 8000 * 5, max_seconds=4)


@pytest.mark.parametrize("data", [
    b"", b"hello world", b"RIFF\x00\x00\x00\x00WAVE", b"RIFF" + b"\xff" * 40,
    _wav(3, 1, 8000, 32, b"\x00" * 8),  # float PCM: unsupported
    _wav(1, 1, 8000, 8, b"\x00" * 8),  # 8-bit PCM: unsupported
    _wav(1, 0, 8000, 16, b"\x00" * 8),
])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(AudioDecodeError):
        decode_audio(data)


def test_decode_error_is_a_speech_error() -> None:
    assert issubclass(AudioDecodeError, SpeechError)
