"""Recognise live call audio as it arrives (8 kHz mu-law frames, as Twilio Media Streams send).

One recogniser per listening prompt, restricted to the same grammar as a recorded answer.
vosk reports a final result at each pause (its endpointer), so an answer is known a
moment after the caller stops speaking, while the prompt may still be playing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .activity import MIN_SPREAD_DB, energy_spread_db, frame_energies_db
from .audio import ulaw_to_pcm16
from .model import SpeechModel
from .recognize import Recognition, grammar_json

PHONE_RATE = 8000


@dataclass(frozen=True)
class Utterance:
    """One final result: what was heard, and where in the stream the speech ended."""

    recognition: Recognition
    speech_end_seconds: float  # stream time of the last word's end (for latency figures)


class StreamingRecognizer:
    """Feed PCM16 or mu-law frames in order; get an Utterance at each pause with words."""

    def __init__(self, model: SpeechModel, phrases: list[str], rate: int = PHONE_RATE,
                 **grammar_options: int):
        import vosk

        if not phrases:
            raise ValueError("a streaming recogniser needs a grammar (phrases)")
        self.rate = rate
        self._recognizer = vosk.KaldiRecognizer(model.load(), float(rate),
                                                grammar_json(model, phrases, **grammar_options))
        self._recognizer.SetWords(True)
        self._bytes = 0  # PCM16 bytes fed in all
        self._utterance_start = 0  # byte offset where the current utterance began
        self._decode_seconds = 0.0  # spent in vosk since the last result
        self._energies: list[float] = []  # 20 ms frame energies of the current utterance

    @property
    def stream_seconds(self) -> float:
        return self._bytes / 2 / self.rate

    def feed_mulaw(self, frame: bytes) -> Utterance | None:
        return self.feed(ulaw_to_pcm16(frame))

    def feed(self, pcm: bytes) -> Utterance | None:
        self._energies.extend(frame_energies_db(pcm, self.rate))
        started = time.perf_counter()
        final = self._recognizer.AcceptWaveform(pcm)
        self._decode_seconds += time.perf_counter() - started
        self._bytes += len(pcm)
        return self._take(self._recognizer.Result()) if final else None

    def speaking(self) -> bool:
        """True while an utterance is under way (words heard, no pause yet)."""
        return bool(json.loads(self._recognizer.PartialResult()).get("partial"))

    def finish(self) -> Utterance | None:
        """Whatever was being said when the stream stopped."""
        started = time.perf_counter()
        result = self._recognizer.FinalResult()
        self._decode_seconds += time.perf_counter() - started
        return self._take(result)

    def _take(self, result_json: str) -> Utterance | None:
        result = json.loads(result_json)
        words = tuple((str(w["word"]), float(w.get("conf", 0.0)))
                      for w in result.get("result", []))
        audio_seconds = (self._bytes - self._utterance_start) / 2 / self.rate
        decode_ms = self._decode_seconds * 1000.0
        self._utterance_start, self._decode_seconds = self._bytes, 0.0
        spread, self._energies = energy_spread_db(self._energies), []
        if not words or spread < MIN_SPREAD_DB:
            return None  # a pause in silence or steady noise: nothing was said
        ends = [float(w.get("end", 0.0)) for w in result.get("result", [])]
        recognition = Recognition(
            text=" ".join(word for word, _ in words), words=words,
            confidence=sum(c for _, c in words) / len(words),
            audio_seconds=audio_seconds, decode_ms=decode_ms)
        return Utterance(recognition, max(ends) if ends else self.stream_seconds)
