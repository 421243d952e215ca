"""The engine as plain function calls: menus and collects answered by voice."""

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
                           "audio_seconds": 1.2, "decode_ms": 25.0, "path": "record"}


def test_unmatched_speech_is_a_no_match_and_silence_a_no_input() -> None:
    flow = load(SPOKEN_MENU)
    session, out = play(flow, start(flow)[0], SpeechHeard("weather", 0.4, None))
    assert heard(out)[0] == "That isn't a choice." and session.attempts == 1
    session, out = play(flow, session, SpeechHeard("", 0.0, None))
    assert heard(out)[0] == "I didn't hear you." and session.attempts == 2


def test_speech_can_be_turned_off_for_a_flow_or_one_menu() -> None:
    assert only(start(load(SPOKEN_MENU))[1], act.Gather).speech == "record"
    off_flow = load("speech: off\n" + SPOKEN_MENU)
    assert only(start(off_flow)[1], act.Gather).speech == "off"
    off_menu = load(SPOKEN_MENU.replace("    retries: 2\n", "    retries: 2\n    speech: off\n"))
    assert only(start(off_menu)[1], act.Gather).speech == "off"


def test_a_menu_without_spoken_synonyms_does_not_listen_for_speech() -> None:
    assert only(start(load(MENU_FLOW))[1], act.Gather).speech == "off"


def test_streaming_is_chosen_per_flow_or_per_menu() -> None:
    stream_flow = load("speech: stream\n" + SPOKEN_MENU)
    assert only(start(stream_flow)[1], act.Gather).speech == "stream"
    one_menu = load(SPOKEN_MENU.replace("    retries: 2\n", "    retries: 2\n    speech: stream\n"))
    assert only(start(one_menu)[1], act.Gather).speech == "stream"


COLLECT_FLOW = """
flow: t
start: account
nodes:
  account:
    type: collect
    prompt: Say or key your account number.
    save_as: account
    min_digits: 4
    max_digits: 6
    invalid: That number doesn't look right.
    no_input: I didn't hear a number.
    next: thanks
    fallback: bye
  thanks: {type: say, text: "Thanks, {{ account }}.", next: bye}
  bye: {type: hangup}
"""


def test_a_collect_listens_for_spoken_digits_unless_speech_is_off() -> None:
    gather = only(start(load(COLLECT_FLOW))[1], act.Gather)
    assert gather.spoken_digits and gather.speech == "record"
    off = only(start(load("speech: off\n" + COLLECT_FLOW))[1], act.Gather)
    assert not off.spoken_digits and off.speech == "off"


def test_spoken_digits_fill_a_collect_like_keyed_ones() -> None:
    flow = load(COLLECT_FLOW)
    session, out = play(flow, start(flow)[0],
                        SpeechHeard("four one two two", 0.9, None, 2.0, 30.0, digits="4122"))
    assert heard(out)[0] == "Thanks, 4122."
    assert session.vars["account"] == "4122"
    speech = next(a for a in out if isinstance(a, act.Log) and a.kind == "speech")
    assert speech.data["digits"] == "4122" and speech.data["text"] == "four one two two"


def test_spoken_digits_of_the_wrong_length_are_invalid_and_words_are_not_a_number() -> None:
    flow = load(COLLECT_FLOW)
    session, out = play(flow, start(flow)[0], SpeechHeard("four one", 0.9, None, digits="41"))
    assert heard(out)[0] == "That number doesn't look right." and session.attempts == 1
    session, out = play(flow, session, SpeechHeard("weather", 0.9, None))
    assert heard(out)[0] == "That number doesn't look right." and session.attempts == 2
    session, out = play(flow, session, SpeechHeard("weather", 0.9, None))
    assert session.done and isinstance(out[-1], act.Hangup)  # retries used up: fallback


def test_silence_at_a_spoken_collect_is_no_input() -> None:
    flow = load(COLLECT_FLOW)
    session, out = play(flow, start(flow)[0], SpeechHeard("", 0.0, None))
    assert heard(out)[0] == "I didn't hear a number." and session.attempts == 1
