"""Synthetic telephone corpus for `python -m bench.speech` (espeak-ng Korean + sox).

Every clip goes the way a phone line would: espeak-ng -> 8 kHz mono PCM16 -> (white noise
mixed in at a measured SNR) -> G.711 mu-law WAV. The SNR is computed from the RMS of the
speech itself (sox `stat` on the clip with its leading/trailing silence trimmed), not
guessed. sox runs with -R, so the noise and the results repeat exactly.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MENU: dict[str, list[str]] = {
    "reserve": ["예약"], "refund": ["환불"], "confirm": ["확인"], "info": ["안내"],
}
OUT_OF_GRAMMAR = [
    "안녕하세요", "감사합니다", "날씨가 좋네요", "사과를 먹었습니다",
    "내일 만나요", "잠시만 기다려 주세요", "여보세요", "상담원 연결해 주세요",
]
VOICES = ("ko", "ko+f3", "ko+m3")
HELD_OUT_VOICE = "ko+m3"  # bench/speech.py reports this voice apart: never used for tuning
SPEEDS = (130, 160, 190)
CONDITIONS: dict[str, float | None] = {"clean": None, "snr20": 20.0, "snr10": 10.0}
# Noise-only clips: colour x level (dBFS RMS) x seconds.
NOISE_COLOURS = ("whitenoise", "pinknoise", "brownnoise")
NOISE_DBFS = (-40.0, -30.0, -20.0)
NOISE_SECONDS = (1.5, 3.0)


@dataclass(frozen=True)
class Clip:
    path: Path
    kind: str  # "menu", "oog" (out-of-grammar speech) or "noise"
    condition: str  # "clean", "snr20", "snr10" or "noise"
    text: str  # what was said ("" for noise)
    expected: str | None  # the menu key, None when nothing should match
    voice: str
    speed: int
    seconds: float = 0.0
    speech_rms: float = 0.0  # of the trimmed speech, full scale = 1.0
    noise_rms: float = 0.0


def _run(*args: str) -> str:
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return done.stdout + done.stderr


def stat(path: Path, *effects: str) -> dict[str, float]:
    """sox `stat` numbers of a file (after optional effects), e.g. 'RMS amplitude'."""
    out = _run("sox", str(path), "-n", *effects, "stat")
    values = {}
    for line in out.splitlines():
        name, sep, value = line.partition(":")
        try:
            values[" ".join(name.split())] = float(value)
        except ValueError:
            continue
    return values


def speech_rms(path: Path) -> float:
    """RMS of the speech with leading and trailing silence (< 1 % full scale) trimmed."""
    trim = ("silence", "1", "0.02", "1%", "reverse", "silence", "1", "0.02", "1%", "reverse")
    return stat(path, *trim)["RMS amplitude"]


def check_tools() -> list[str]:
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


def _speech(folder: Path, index: int, text: str, voice: str, speed: int,
            kind: str, expected: str | None) -> list[Clip]:
    """One utterance in every condition."""
    base = folder / f"u{index:03d}"
    tts, pcm8k = base.with_suffix(".tts.wav"), base.with_suffix(".8k.wav")
    _run("espeak-ng", "-v", voice, "-s", str(speed), "-w", str(tts), text)
    _run("sox", "-R", str(tts), "-r", "8000", "-c", "1", "-b", "16", str(pcm8k))
    seconds = stat(pcm8k)["Length (seconds)"]
    rms = speech_rms(pcm8k)
    clips = []
    for condition, snr in CONDITIONS.items():
        source, noise_rms = pcm8k, 0.0
        if snr is not None:
            noise_rms = rms / 10 ** (snr / 20)
            source = base.with_suffix(f".{condition}.wav")
            noise_rms = _mix_noise(pcm8k, source, seconds, noise_rms, "whitenoise")
        out = base.with_suffix(f".{condition}.ul.wav")
        _run("sox", "-R", str(source), "-e", "mu-law", str(out))
        clips.append(Clip(out, kind, condition, text, expected, voice, speed, seconds, rms,
                          noise_rms))
    return clips


def _noise(seconds: float, level: float, colour: str, dest: Path) -> float:
    """Noise of `colour` scaled to RMS `level` (measured, then scaled); returns the RMS."""
    raw = dest.with_suffix(".raw.wav")
    _run("sox", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", str(raw),
         "synth", f"{seconds:.3f}", colour)
    measured = stat(raw)["RMS amplitude"]
    _run("sox", "-R", str(raw), str(dest), "vol", f"{level / measured:.6f}")
    return stat(dest)["RMS amplitude"]


def _mix_noise(speech: Path, dest: Path, seconds: float, level: float, colour: str) -> float:
    """Mix noise of RMS `level` into `speech`; returns the noise RMS measured."""
    noise = dest.with_suffix(".noise.wav")
    rms = _noise(seconds, level, colour, noise)
    # -v 1 on both inputs: sox -m would otherwise halve each (same SNR, quieter); clipping
    # is not a risk at these levels (speech peaks stay well under full scale).
    _run("sox", "-R", "-m", "-v", "1", str(speech), "-v", "1", str(noise), str(dest))
    return rms


def _noise_only(folder: Path, index: int, colour: str, dbfs: float, seconds: float) -> Clip:
    pcm = folder / f"n{index:03d}.wav"
    rms = _noise(seconds, 10 ** (dbfs / 20), colour, pcm)
    out = pcm.with_suffix(".ul.wav")
    _run("sox", "-R", str(pcm), "-e", "mu-law", str(out))
    return Clip(out, "noise", "noise", f"{colour} {dbfs:g} dBFS", None, "", 0, seconds, 0.0,
                rms)


def build(folder: Path, workers: int = 2) -> list[Clip]:
    """The whole corpus in `folder`: menu words and out-of-grammar phrases in every voice,
    speed and condition, then noise-only clips. Deterministic order."""
    jobs: list[tuple[str, str | None]] = [
        (word, key) for key, words in MENU.items() for word in words
    ] + [(text, None) for text in OUT_OF_GRAMMAR]
    specs = [
        (text, voice, speed, "menu" if key else "oog", key)
        for text, key in jobs for voice in VOICES for speed in SPEEDS
    ]
    noise = [(c, d, s) for c in NOISE_COLOURS for d in NOISE_DBFS for s in NOISE_SECONDS]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        speech = pool.map(lambda a: _speech(folder, a[0], *a[1]), enumerate(specs))
        noises = pool.map(lambda a: _noise_only(folder, a[0], *a[1]), enumerate(noise))
        clips = [clip for group in speech for clip in group]
        clips += list(noises)
    return clips

