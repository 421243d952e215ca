"""Inbound replies: opt-out first, whole-message keywords, and the ambiguous "1"."""

from __future__ import annotations

import pytest

from sms.keywords import KEYWORDS, Inbound, classify


@pytest.mark.parametrize("body", ["STOP", "stop", " Stop ", "STOP.", "stop!!", "StopAll",
                                  "STOP ALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE",
                                  "optout", "opt-out", "Opt out", '"stop"', "ＳＴＯＰ"])
def test_opt_out_keywords_stop(body: str) -> None:
    assert classify(body).kind == "stop"


def test_every_twilio_default_opt_out_keyword_stops() -> None:
    for word in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"):
        assert classify(word) == Inbound("stop", word)


@pytest.mark.parametrize("body", ["please stop", "don't stop", "stop it now", "stopp", "the end"])
def test_keywords_only_count_as_the_whole_message(body: str) -> None:
    assert classify(body).kind == "other"


def test_stop_wins_even_while_a_survey_or_callback_is_open() -> None:
    assert classify("stop", offered_callback=True, survey_pending=True).kind == "stop"


@pytest.mark.parametrize("body", ["START", "yes", "Unstop."])
def test_opt_in_keywords_start(body: str) -> None:
    assert classify(body).kind == "start"


@pytest.mark.parametrize("body", ["HELP", "help?", "Info"])
def test_help_keywords_ask_for_help(body: str) -> None:
    assert classify(body).kind == "help"


@pytest.mark.parametrize("body", ["CALLBACK", "call back", "Call me", "call me back!",
                                  "call-back"])
def test_callback_words_request_a_callback_without_an_offer(body: str) -> None:
    assert classify(body).kind == "callback"


def test_one_requests_a_callback_only_when_one_was_offered() -> None:
    assert classify("1", offered_callback=True) == Inbound("callback", "1")
    assert classify("1") == Inbound("other", "1")


@pytest.mark.parametrize("body, score", [("1", 1), ("3", 3), ("5.", 5), (" 4 ", 4), ("4/5", 4),
                                         ("5 stars", 5), ("great", 5), ("Good!", 4), ("ok", 3),
                                         ("okay", 3), ("bad", 2), ("terrible", 1), ("poor", 1),
                                         ("２", 2)])
def test_survey_answers_score_while_a_survey_is_pending(body: str, score: int) -> None:
    assert classify(body, survey_pending=True) == Inbound("survey", score)


@pytest.mark.parametrize("body", ["3", "great", "ok"])
def test_survey_answers_are_other_when_no_survey_is_pending(body: str) -> None:
    assert classify(body).kind == "other"


@pytest.mark.parametrize("body", ["0", "6", "10", "45"])
def test_digits_outside_one_to_five_are_not_scores(body: str) -> None:
    assert classify(body, survey_pending=True).kind == "other"


def test_one_is_a_survey_score_when_the_survey_came_after_the_callback_offer() -> None:
    assert classify("1", offered_callback=True, survey_pending=True, latest="survey") == \
        Inbound("survey", 1)


def test_one_is_a_callback_when_the_offer_came_after_the_survey() -> None:
    assert classify("1", offered_callback=True, survey_pending=True, latest="callback") == \
        Inbound("callback", "1")


def test_one_is_a_callback_when_both_are_open_and_the_order_is_unknown() -> None:
    assert classify("1", offered_callback=True, survey_pending=True).kind == "callback"


def test_other_digits_are_scores_even_with_a_callback_offered() -> None:
    assert classify("4", offered_callback=True, survey_pending=True, latest="callback") == \
        Inbound("survey", 4)


def test_an_unrecognised_reply_keeps_its_text() -> None:
    assert classify("  what time do you close?  ") == Inbound("other", "what time do you close?")
    assert classify("") == Inbound("other", "")


def test_keyword_lists_do_not_overlap() -> None:
    seen: set[str] = set()
    for words in KEYWORDS.values():
        assert not seen & words
        seen |= words
