"""What an inbound text means: opt-out, opt-in, help, a callback request, a survey answer.

Keywords match the whole message only ("STOP" but not "don't stop"), ignoring case, spacing
and trailing punctuation, as carriers and Twilio do. The opt-out list is Twilio's default
plus spellings of the same words: honouring more opt-outs than Twilio is safe, fewer is not
(Twilio would block the next send with error 21610 while we still thought we could text).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Kind = Literal["stop", "start", "help", "callback", "survey", "other"]
Latest = Literal["survey", "callback"] | None

KEYWORDS: dict[str, frozenset[str]] = {
    "stop": frozenset({"stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit",
                       "revoke", "optout", "opt out"}),
    "start": frozenset({"start", "yes", "unstop"}),
    "help": frozenset({"help", "info"}),
    "callback": frozenset({"callback", "call back", "call me", "call me back"}),
}
SURVEY_WORDS: dict[str, int] = {
    "excellent": 5, "great": 5,
    "good": 4,
    "ok": 3, "okay": 3, "fine": 3,
    "bad": 2,
    "poor": 1, "terrible": 1, "awful": 1,
}
SURVEY_SCORES = range(1, 6)
CALLBACK_DIGIT = "1"

_TRAILING = re.compile(r"[\s.!?,;:'\"\u2019)]+$")
_LEADING = re.compile(r"^[\s'\"\u2018(]+")


@dataclass(frozen=True)
class Inbound:
    """A classified reply: kind, and the keyword matched, the survey score, or the text."""

    kind: Kind
    value: str | int | None = None


def clean(body: str) -> str:
    """The message as compared: NFKC (full-width digits become ASCII), lower case, single
    spaces, hyphens as spaces ("opt-out"), no surrounding quotes or trailing punctuation."""
    text = unicodedata.normalize("NFKC", body or "").casefold()
    text = _LEADING.sub("", _TRAILING.sub("", text))
    return " ".join(text.replace("-", " ").split())


def classify(body: str, *, offered_callback: bool = False, survey_pending: bool = False,
             latest: Latest = None) -> Inbound:
    """Classify an inbound SMS body.

    "1" answers both a callback offer and a survey: it is a survey score only when a survey
    is pending and either no callback was offered or the survey was sent after the offer
    (latest="survey"). When both are open and the order is unknown it is a callback request,
    since a lost callback strands a caller while a lost score costs one data point.
    """
    text = clean(body)
    for kind in ("stop", "start", "help", "callback"):
        if text in KEYWORDS[kind]:
            return Inbound(kind, text.upper())  # type: ignore[arg-type]
    if text == CALLBACK_DIGIT and offered_callback and not (survey_pending and latest == "survey"):
        return Inbound("callback", text)
    if survey_pending:
        score = _survey_score(text)
        if score is not None:
            return Inbound("survey", score)
    return Inbound("other", (body or "").strip())


def _survey_score(text: str) -> int | None:
    """1-5 from a digit or a word ("great"), also "4/5" and "4 stars"; None otherwise."""
    if text in SURVEY_WORDS:
        return SURVEY_WORDS[text]
    match = re.fullmatch(r"(\d)(?: ?/ ?5| stars?)?", text)
    if match and int(match.group(1)) in SURVEY_SCORES:
        return int(match.group(1))
    return None
