"""Steady noise and silence are not speech; speech is, even in 10 dB of noise."""

from __future__ import annotations

import pytest

from speech.activity import energy_spread_db, frame_energies_db, sounds_like_speech
from speech.audio import decode_wav

from . import audio_fixtures
from .audio_fixtures import TelephoneAudio

phone_audio = audio_fixtures.phone_audio


def _pcm(path) -> tuple[bytes, int]:  # noqa: ANN001
    audio = decode_wav(path.read_bytes())
    return audio.pcm, audio.sample_rate


@pytest.mark.parametrize("volume", [0.01, 0.05, 0.3])
def test_steady_noise_on_the_line_is_not_speech(phone_audio: TelephoneAudio, volume: float):
    assert not sounds_like_speech(*_pcm(phone_audio.noise_pcm_wav(2.0, volume)))


def test_silence_is_not_speech() -> None:
    assert not sounds_like_speech(b"\x00\x00" * 16000, 8000)
    assert energy_spread_db(frame_energies_db(b"", 8000)) == 0.0


@pytest.mark.parametrize("noise", [0.0, 0.02, 0.05])
def test_a_spoken_word_is_speech_even_with_noise(phone_audio: TelephoneAudio, noise: float):
    assert sounds_like_speech(*_pcm(phone_audio.pcm_wav("환불", noise)))
