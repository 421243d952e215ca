"""Recognise one utterance with a shared vosk model, optionally restricted to a grammar."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .errors import AudioDecodeError
from .model import SpeechModel

CHUNK_SECONDS = 0.25


@dataclass(frozen=True)
class Recognition:
    """What vosk heard: words with per-word confidence, and what it cost."""

    text: str
    words: tuple[tuple[str, float], ...]
    confidence: float  # mean word confidence, 0.0 when nothing was heard
    audio_seconds: float
    decode_ms: float


def unknown_token(model: SpeechModel) -> str:
    """The model's garbage word for out-of-grammar speech.

    vosk's documentation uses "[unk]", but that is only a convention of some
    models' words.txt. The small Korean model's vocabulary has "<UNK>" and no
    "[unk]"; vosk drops grammar words missing from the vocabulary, so "[unk]"
    would silently vanish and out-of-grammar speech would be forced onto a
    menu word. Measured here: with "<UNK>" in the grammar vosk does output
    "<UNK>" for some out-of-grammar speech, which the matcher then rejects.
    """
    vocab = model.vocabulary
    if "[unk]" in vocab:
        return "[unk]"
    if "<UNK>" in vocab:
        return "<UNK>"
    return "[unk]"


def grammar_json(model: SpeechModel, phrases: list[str]) -> str:
    """Grammar text for KaldiRecognizer: raw UTF-8, since vosk drops \\uXXXX-escaped words."""
    return json.dumps([*phrases, unknown_token(model)], ensure_ascii=False)


def recognize(
    model: SpeechModel,
    pcm: bytes,
    rate: int,
    phrases: list[str] | None = None,
    *,
    chunk_seconds: float = CHUNK_SECONDS,
) -> Recognition:
    """Decode PCM16 LE mono; a new recogniser per utterance, so threads can share `model`."""
    import vosk

    if rate <= 0:
        raise AudioDecodeError(f"bad sample rate {rate}")
    if len(pcm) % 2:
        raise AudioDecodeError("PCM16 audio has an odd number of bytes")
    vmodel = model.load()
    if phrases:
        recognizer = vosk.KaldiRecognizer(vmodel, float(rate), grammar_json(model, phrases))
    else:
        recognizer = vosk.KaldiRecognizer(vmodel, float(rate))
    recognizer.SetWords(True)
    step = max(2, int(rate * chunk_seconds) * 2)
    started = time.perf_counter()
    segments = []
    for offset in range(0, len(pcm), step):
        # True means vosk hit an endpoint (a pause): keep that segment, or it is lost.
        if recognizer.AcceptWaveform(pcm[offset:offset + step]):
            segments.append(json.loads(recognizer.Result()))
    segments.append(json.loads(recognizer.FinalResult()))
    decode_ms = (time.perf_counter() - started) * 1000.0
    words = tuple(
        (str(w["word"]), float(w.get("conf", 0.0)))
        for segment in segments
        for w in segment.get("result", [])
    )
    confidence = sum(c for _, c in words) / len(words) if words else 0.0
    return Recognition(
        text=" ".join(word for word, _ in words),
        words=words,
        confidence=confidence,
        audio_seconds=len(pcm) / 2 / rate,
        decode_ms=decode_ms,
    )
