"""Recognition with the real small Korean vosk model on synthetic telephone audio.

Measured on espeak-ng Korean at 8 kHz mu-law: the two-syllable menu words
예약/환불/확인/안내 are recognised at every noise level tried; single-syllable
digits are weak (espeak's Korean is rough), so only digit pairs that decode
reliably are asserted. Out-of-grammar speech is usually decoded as several
menu fragments (rejected by match_choice), but not always: see
test_known_false_accepts.
"""

from __future__ import annotations

import threading
import time

import pytest

from speech.audio import decode_wav
from speech.errors import ModelUnavailable
from speech.matching import digit_grammar, match_choice, spoken_digits
from speech.model import SpeechModel, default_model_path, shared_model
from speech.recognize import Recognition, recognize

from . import audio_fixtures
from .audio_fixtures import TelephoneAudio

pytestmark = pytest.mark.slow
phone_audio = audio_fixtures.phone_audio
korean_model = audio_fixtures.korean_model

MENU = {"reserve": ["예약"], "refund": ["환불"], "confirm": ["확인"], "info": ["안내"]}
PHRASES = [p for synonyms in MENU.values() for p in synonyms]
NOISE_LEVELS = (0.0, 0.02, 0.05)


def _recognise(model: SpeechModel, path: object, phrases: list[str] | None) -> Recognition:
    audio = decode_wav(path.read_bytes())  # type: ignore[attr-defined]
    result = recognize(model, audio.pcm, audio.sample_rate, phrases)
    print(f"  {result.text!r:24} conf={result.confidence:.2f} "
          f"{result.audio_seconds:.2f}s audio, decode {result.decode_ms:.0f} ms")
    return result


def test_model_facts(korean_model: SpeechModel) -> None:
    assert korean_model.loaded and korean_model.supports_grammar
    assert korean_model.language == "ko"
    assert {"예약", "환불", "확인", "안내", "<UNK>"} <= korean_model.vocabulary
    assert "[unk]" not in korean_model.vocabulary
    assert korean_model.unknown_words(["예약", "xyzzyq 환불"]) == ["xyzzyq"]
    print(f"  model load {korean_model.load_seconds:.2f} s, "
          f"{len(korean_model.vocabulary)} words")


def test_model_loads_once(korean_model: SpeechModel) -> None:
    first = korean_model.load()
    assert korean_model.load() is first
    assert korean_model.load_count == 1


def test_concurrent_first_load_loads_once() -> None:
    model = SpeechModel(default_model_path())
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(model.load())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert model.load_count == 1 and len({id(r) for r in results}) == 1


def test_shared_model_is_one_per_path() -> None:
    path = default_model_path()
    assert shared_model(path) is shared_model(str(path))


def test_missing_or_bad_model_names_the_path(tmp_path: object) -> None:
    with pytest.raises(ModelUnavailable, match="no speech model configured"):
        SpeechModel(None)
    with pytest.raises(ModelUnavailable, match="/nonexistent/model"):
        SpeechModel("/nonexistent/model").load()
    with pytest.raises(ModelUnavailable, match=str(tmp_path)):
        SpeechModel(tmp_path).load()  # type: ignore[arg-type]


@pytest.mark.parametrize("noise", NOISE_LEVELS)
@pytest.mark.parametrize("choice", sorted(MENU))
def test_spoken_choice(korean_model: SpeechModel, phone_audio: TelephoneAudio, choice: str,
                       noise: float) -> None:
    result = _recognise(korean_model, phone_audio.mulaw_wav(MENU[choice][0], noise), PHRASES)
    assert match_choice(result, MENU) == choice
    assert result.decode_ms < 2000


@pytest.mark.parametrize("text", ["날씨가 좋네요", "사과를 먹었습니다", "안녕하세요"])
def test_out_of_grammar_speech_gives_no_choice(korean_model: SpeechModel,
                                               phone_audio: TelephoneAudio, text: str) -> None:
    result = _recognise(korean_model, phone_audio.mulaw_wav(text), PHRASES)
    assert match_choice(result, MENU) is None


@pytest.mark.parametrize("volume", [0.02, 0.1])
def test_noise_gives_no_choice(korean_model: SpeechModel, phone_audio: TelephoneAudio,
                               volume: float) -> None:
    result = _recognise(korean_model, phone_audio.noise_pcm_wav(2.0, volume), PHRASES)
    assert match_choice(result, MENU) is None


def test_known_false_accepts(korean_model: SpeechModel, phone_audio: TelephoneAudio) -> None:
    """Documents a limit, not a wish: the grammar forces some non-answers onto a menu word
    with high confidence ("감사합니다" under light noise -> 환불; loud white noise -> 안내).
    The flow must therefore confirm consequential choices and always offer keys/a human."""
    thanks = _recognise(korean_model, phone_audio.mulaw_wav("감사합니다", 0.02), PHRASES)
    loud = _recognise(korean_model, phone_audio.noise_pcm_wav(2.0, 0.3), PHRASES)
    accepted = [match_choice(thanks, MENU), match_choice(loud, MENU)]
    assert all(a is None or a in MENU for a in accepted)


@pytest.mark.parametrize("text,digits", [("이 삼", "23"), ("오 삼", "53")])
def test_spoken_korean_digits(korean_model: SpeechModel, phone_audio: TelephoneAudio,
                              text: str, digits: str) -> None:
    result = _recognise(korean_model, phone_audio.pcm_wav(text), digit_grammar("ko"))
    assert spoken_digits(result, "ko") == digits


def test_digits_output_is_only_ever_digits_or_none(korean_model: SpeechModel,
                                                   phone_audio: TelephoneAudio) -> None:
    for text in ["삼 오", "오 이", "이 삼 오", "예약"]:
        got = spoken_digits(_recognise(korean_model, phone_audio.pcm_wav(text, 0.02),
                                       digit_grammar("ko")), "ko")
        assert got is None or got.isdigit()


def test_concurrent_recognitions_share_one_model(korean_model: SpeechModel,
                                                 phone_audio: TelephoneAudio) -> None:
    jobs = [(c, decode_wav(phone_audio.mulaw_wav(MENU[c][0]).read_bytes())) for c in MENU] * 3
    outcomes: dict[int, str | None] = {}
    errors: list[BaseException] = []

    def work(i: int, audio: object) -> None:
        try:
            r = recognize(korean_model, audio.pcm, audio.sample_rate, PHRASES)  # type: ignore
            outcomes[i] = match_choice(r, MENU)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i, a)) for i, (_, a) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"  {len(jobs)} concurrent recognitions in {time.perf_counter() - started:.2f} s")
    assert not errors
    assert outcomes == {i: c for i, (c, _) in enumerate(jobs)}
    assert korean_model.load_count == 1


def test_free_form_and_empty_audio(korean_model: SpeechModel) -> None:
    empty = recognize(korean_model, b"", 8000, PHRASES)
    assert empty.words == () and empty.confidence == 0.0 and match_choice(empty, MENU) is None
    silence = recognize(korean_model, b"\x00\x00" * 8000, 8000, None)
    assert silence.audio_seconds == 1.0
