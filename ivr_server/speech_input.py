"""A caller's spoken answer, from Twilio's audio to a menu choice or digits, heard here.

Path 1 (one request per answer): the node's TwiML records the answer; the action handler
gives the RecordingUrl here. The audio is fetched from Twilio with the account's
credentials (bounded in time and size), decoded, recognised with the node's grammar
(menu synonyms or digit words) and checked against it again. Any failure is a no-match,
never an error. Path 2 (streaming, media_stream.py) judges its live results with `judge`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import requests

from flows.events import SpeechHeard
from speech.activity import sounds_like_speech
from speech.audio import decode_audio
from speech.errors import SpeechError
from speech.garbage import FILLER_COUNT, PHRASE_WEIGHT
from speech.matching import DIGIT_WORDS, digit_grammar, match_choice, spoken_digits
from speech.model import SpeechModel
from speech.recognize import Recognition, recognize

from . import metrics

TWILIO_API = "https://api.twilio.com"
log = logging.getLogger(__name__)


class SpeechInput:
    def __init__(self, model: SpeechModel, *, account_sid: str, auth_token: str,
                 api_base_url: str = TWILIO_API, min_confidence: float = 0.6,
                 max_bytes: int = 1_000_000, timeout: float = 5.0,
                 delete_recordings: bool = True, filler_words: int = FILLER_COUNT,
                 phrase_weight: int = PHRASE_WEIGHT):
        self.model = model
        self.auth = (account_sid, auth_token)
        self.api_base_url = api_base_url.rstrip("/")
        self.min_confidence, self.max_bytes, self.timeout = min_confidence, max_bytes, timeout
        self.http = requests.Session()
        self.http.trust_env = False
        self.delete_recordings = delete_recordings
        self.filler_words, self.phrase_weight = filler_words, phrase_weight
        # Deleting never delays the caller: it runs beside the webhook, best effort.
        self._deleter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="recording-delete")

    @property
    def digits_language(self) -> str | None:
        """The language digit words are read in (the model's), or None if we have no table."""
        language = self.model.language or ""
        code = language.lower().replace("_", "-").split("-")[0]
        return code if code in DIGIT_WORDS else None

    def grammar(self, synonyms: Mapping[str, Sequence[str]] | None = None, *,
                digits: bool = False) -> list[str]:
        """What the recogniser may hear: a menu's synonyms, or digit words for a collect."""
        if digits:
            language = self.digits_language
            return digit_grammar(language) if language else []
        return sorted({p for options in (synonyms or {}).values() for p in options})

    def grammar_options(self, digits: bool = False) -> dict[str, int]:
        """How strongly menus reject other speech (speech/garbage.py); digit grammars keep
        vosk's plain grammar, since fillers steal short digit words."""
        if digits:
            return {}
        return {"filler_count": self.filler_words, "phrase_weight": self.phrase_weight}

    def judge(self, heard: Recognition, synonyms: Mapping[str, Sequence[str]] | None = None,
              *, digits: bool = False, path: str = "record") -> SpeechHeard:
        """Check what the recogniser returned against what the node accepts (the grammar
        only biases decoding): a choice, digits, or a no-match."""
        choice = match_choice(heard, synonyms, self.min_confidence) if synonyms else None
        number = None
        if digits and self.digits_language:
            number = spoken_digits(heard, self.digits_language, self.min_confidence)
        return SpeechHeard(heard.text, heard.confidence, choice, heard.audio_seconds,
                           heard.decode_ms, digits=number, path=path)

    def hear(self, recording_url: str, synonyms: Mapping[str, Sequence[str]] | None = None,
             *, digits: bool = False) -> SpeechHeard:
        try:
            audio = self._download(recording_url)
        except (requests.RequestException, ValueError, OSError) as exc:
            log.warning("speech: no usable audio at %s: %s", recording_url[:200], exc)
            return SpeechHeard("", 0.0, None, error=f"{type(exc).__name__}: {exc}"[:200])
        if self.delete_recordings:
            self._deleter.submit(self._delete, recording_url)
        return self.hear_audio(audio, synonyms, digits=digits)

    def hear_audio(self, audio: bytes, synonyms: Mapping[str, Sequence[str]] | None = None,
                   *, digits: bool = False) -> SpeechHeard:
        """Recognise one answer (a WAV, PCM or mu-law) against a menu's choices or as digits:
        the code path of every call, also behind `ivr speech recognize`."""
        phrases = self.grammar(synonyms, digits=digits)
        if not phrases:
            return SpeechHeard("", 0.0, None, error="nothing to listen for")
        try:
            decoded = decode_audio(audio)
            if not sounds_like_speech(decoded.pcm, decoded.sample_rate):
                # Steady noise or silence: nobody spoke, whatever the grammar would force.
                return SpeechHeard("", 0.0, None, decoded.duration_seconds)
            heard = recognize(self.model, decoded.pcm, decoded.sample_rate, phrases,
                              **self.grammar_options(digits))
        except (SpeechError, ValueError, OSError) as exc:
            log.warning("speech: audio not recognised: %s", exc)
            return SpeechHeard("", 0.0, None, error=f"{type(exc).__name__}: {exc}"[:200])
        metrics.recognition(heard.decode_ms, "record")
        return self.judge(heard, synonyms, digits=digits)

    def _delete(self, recording_url: str) -> None:
        """Privacy: the caller's voice is not kept at Twilio once we have heard it."""
        try:
            url = self._api_url(recording_url).removesuffix(".wav") + ".json"
            resp = self.http.delete(url, auth=self.auth, timeout=self.timeout)
            if resp.status_code not in (204, 404):
                log.warning("speech: deleting %s answered HTTP %s", url, resp.status_code)
        except (requests.RequestException, ValueError) as exc:
            log.warning("speech: could not delete %s: %s", recording_url[:200], exc)

    def _api_url(self, recording_url: str) -> str:
        url = recording_url
        if url.startswith(TWILIO_API + "/"):
            url = self.api_base_url + url[len(TWILIO_API):]
        if not url.startswith(self.api_base_url + "/"):
            raise ValueError(f"recording URL is not on {self.api_base_url}")
        return url

    def _download(self, recording_url: str) -> bytes:
        """Only from Twilio's API (or the configured stand-in): a signed request still must
        not make us fetch arbitrary URLs."""
        url = self._api_url(recording_url)
        started = time.perf_counter()
        with self.http.get(url, auth=self.auth, timeout=self.timeout, stream=True,
                           allow_redirects=False) as resp:
            if resp.status_code != 200:
                raise ValueError(f"recording download answered HTTP {resp.status_code}")
            chunks, size = [], 0
            for chunk in resp.iter_content(16384):
                size += len(chunk)
                if size > self.max_bytes:
                    raise ValueError(f"recording larger than {self.max_bytes} bytes")
                if time.perf_counter() - started > self.timeout:
                    raise ValueError(f"recording download took over {self.timeout}s")
                chunks.append(chunk)
        return b"".join(chunks)
