"""Recognise one utterance with a shared vosk model, optionally restricted to a grammar."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .errors import AudioDecodeError
from .garbage import FILLER_COUNT, PHRASE_WEIGHT, filler_words
from .matching import is_digit_grammar
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


def grammar_json(
    model: SpeechModel,
    phrases: list[str],
    *,
    filler_count: int | None = None,
    phrase_weight: int | None = None,
) -> str:
    """Grammar text for KaldiRecognizer: raw UTF-8, since vosk drops \\uXXXX-escaped words.

    Besides the phrases (each listed `phrase_weight` times: vosk counts them into
    a bigram LM, so that is their prior weight) it offers the model's garbage
    word and `filler_count` filler words from the model's vocabulary
    (speech/garbage.py), so speech that is none of the phrases can decode as
    something match_choice rejects instead of being forced onto a phrase.
    `filler_count=0, phrase_weight=1` gives the plain phrase grammar, which is
    also the default for a digits grammar (matching.digit_grammar): fillers
    steal short digit words (measured: digit accuracy fell by two thirds).
    """
    unique = list(dict.fromkeys(p for p in phrases if p.strip()))
    digits = is_digit_grammar(unique)
    if filler_count is None:
        filler_count = 0 if digits else FILLER_COUNT
    if phrase_weight is None:
        phrase_weight = 1 if digits else PHRASE_WEIGHT
    fillers = filler_words(model.vocabulary, unique, filler_count) if filler_count > 0 else []
    grammar = [*unique * max(1, phrase_weight), unknown_token(model), *fillers]
    return json.dumps(grammar, ensure_ascii=False)


def recognize(
    model: SpeechModel,
    pcm: bytes,
    rate: int,
    phrases: list[str] | None = None,
    *,
    chunk_seconds: float = CHUNK_SECONDS,
    filler_count: int | None = None,
    phrase_weight: int | None = None,
) -> Recognition:
    """Decode PCM16 LE mono; a new recogniser per utterance, so threads can share `model`.

    With `phrases`, the grammar is grammar_json's (fillers included, see there).
    """
    import vosk

    if rate <= 0:
        raise AudioDecodeError(f"bad sample rate {rate}")
    if len(pcm) % 2:
        raise AudioDecodeError("PCM16 audio has an odd number of bytes")
    vmodel = model.load()
    if phrases:
        grammar = grammar_json(model, phrases, filler_count=filler_count,
                               phrase_weight=phrase_weight)
        recognizer = vosk.KaldiRecognizer(vmodel, float(rate), grammar)
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
