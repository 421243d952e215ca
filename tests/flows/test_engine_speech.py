"""The engine as plain function calls: a menu answered by voice."""

from __future__ import annotations

from flows import actions as act
from flows.events import SpeechHeard

from .engine_helpers import MENU_FLOW, heard, load, only, play, start

SPOKEN_MENU = MENU_FLOW.replace("{key: 1, label: sales, goto: sales}",
                                "{key: 1, label: sales, say: [sales, buy], goto: sales}")


def test_menu_offers_its_spoken_synonyms_to_the_edge() -> None:
    gather = only(start(load(SPOKEN_MENU))[1], act.Gather)
    assert gather.synonyms == (("1", ("sales", "buy")),)
    assert only(start(load(MENU_FLOW))[1], act.Gather).synonyms == ()


def test_a_matched_spoken_choice_goes_where_its_option_says_and_is_logged() -> None:
    flow = load(SPOKEN_MENU)
    session, out = play(flow, start(flow)[0], SpeechHeard("buy", 0.93, "1", 1.2, 25.0))
    assert heard(out) == ["Connecting you to sales."]
    assert session.choices == ["sales"]
    speech = next(a for a in out if isinstance(a, act.Log) and a.kind == "speech")
    assert speech.data == {"text": "buy", "confidence": 0.93, "choice": "sales",
                           "audio_seconds": 1.2, "decode_ms": 25.0}


def test_unmatched_speech_is_a_no_match_and_silence_a_no_input() -> None:
    flow = load(SPOKEN_MENU)
    session, out = play(flow, start(flow)[0], SpeechHeard("weather", 0.4, None))
    assert heard(out)[0] == "That isn't a choice." and session.attempts == 1
    session, out = play(flow, session, SpeechHeard("", 0.0, None))
    assert heard(out)[0] == "I didn't hear you." and session.attempts == 2


def test_speech_can_be_turned_off_for_a_flow_or_one_menu() -> None:
    off_flow = load("speech: off\n" + SPOKEN_MENU)
    assert only(start(off_flow)[1], act.Gather).synonyms == ()
    off_menu = load(SPOKEN_MENU.replace("    retries: 2\n", "    retries: 2\n    speech: off\n"))
    assert only(start(off_menu)[1], act.Gather).synonyms == ()
