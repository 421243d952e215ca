"""One call, told for a supervisor: every step in order, and a one-paragraph story of why
the caller ended where they did ("Pressed 1 (billing) → account number entered → joined
queue billing, told about 3–5 min, waited 6 min 10 s, hung up → abandoned; callback booked
for 14:20, answered on attempt 2.").

Pure: rows in, text out (no database, no Flask), so every wording is unit-tested. The
steps come from the call's events, its text messages, its survey and its callback requests;
numbers in them were masked when they were written and stay so here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from ..models import Call, CallbackRequest, CallEvent, SmsMessage, SmsSurvey
from .timeline_text import (
    DESCRIBE,
    LABELS,
    describe_generic,
    human_duration,
    humanize,
    local_time,
    told,
)

OUTCOME_LABELS = {"self-served": "self-served", "transferred": "transferred",
                  "abandoned": "abandoned", "callback": "callback", "failed": "failed",
                  "closed": "closed"}
ANSWERED = ("answered", "completed", "in-progress")
# Both the engine and the webhook record how a caller left a queue; one line is enough.
SHADOWED = {"queue_left": "queue_result"}


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: when (and how long after the call started), what, detail."""

    at: datetime
    offset: str  # "+0:12"
    kind: str  # the event kind (or sms_sent / sms_received / survey / callback_request)
    label: str
    text: str
    node: str | None = None


@dataclass(frozen=True)
class CallStory:
    entries: list[Entry]
    story: str


def offset(start: datetime, at: datetime) -> str:
    """'+0:12', '+6:05', '+1:02:03' after the call started ('-0:03' before it)."""
    seconds = round((at - start).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes}:{secs:02d}"


def build(call: Call, events: Sequence[CallEvent], messages: Sequence[SmsMessage] = (),
          survey: SmsSurvey | None = None, callbacks: Sequence[CallbackRequest] = (),
          zone: tzinfo = UTC) -> CallStory:
    return CallStory(entries(call, events, messages, survey, callbacks, zone),
                     story(call, events, survey, callbacks, zone))


# -- the timeline --------------------------------------------------------------------------

def entries(call: Call, events: Sequence[CallEvent], messages: Sequence[SmsMessage] = (),
            survey: SmsSurvey | None = None, callbacks: Sequence[CallbackRequest] = (),
            zone: tzinfo = UTC) -> list[Entry]:
    """Events, texts, the survey and callback requests merged in time order (ties keep the
    order they were written in)."""
    start = call.started_at
    kinds = {e.kind for e in events}
    texted = {m.body for m in messages if m.direction == "outbound"}
    timed: list[tuple[datetime, int, Entry]] = []

    def add(at: datetime, kind: str, label: str, text: str, node: str | None = None) -> None:
        timed.append((at, len(timed), Entry(at, offset(start, at), kind, label, text, node)))

    for e in events:
        data = e.data or {}
        if SHADOWED.get(e.kind) in kinds:
            continue
        if e.kind == "sms_queued" and data.get("body") in texted:
            continue  # the message itself is listed, with its delivery status
        describe = DESCRIBE.get(e.kind, describe_generic)
        add(e.at, e.kind, LABELS.get(e.kind) or humanize(e.kind).capitalize(),
            describe(data, zone), e.node)
    for m in messages:
        inbound = m.direction == "inbound"
        what = f"“{m.body}”" + (f" ({humanize(m.kind)}, {m.status})" if not inbound else "")
        if m.error:
            what += f": {m.error}"
        add(m.created_at, "sms_received" if inbound else "sms_sent",
            "Text received" if inbound else "Text sent", what)
    if survey is not None and survey.score is not None and "survey_answer" not in kinds:
        add(survey.answered_at or survey.asked_at, "survey", "Survey",
            f"Scored the call {survey.score} out of 5")
    seen = {(e.data or {}).get("callback") for e in events if e.kind.startswith("callback_")}
    for cb in callbacks:
        if cb.id not in seen:  # its transitions were not logged (an older row): say where it is
            add(cb.created_at, "callback_request", "Callback request",
                f"#{cb.id} for {cb.queue}: {cb.state}, {cb.attempts} attempt(s)"
                + (f", due {local_time(cb.due_at, zone)}" if cb.due_at else ""))
    timed.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in timed]


# -- the story -----------------------------------------------------------------------------

class _Story:
    """Walks the events once, keeping the caller's path (joined by →) apart from what
    happened after the call (the callback, the survey)."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.path: list[str] = []
        self.after: list[str] = []
        self.queue_phrase: int | None = None  # where the current queue's phrase is in path
        self.answered_in_queue = False
        self.leaving: str | None = None  # why the caller is about to leave the queue
        self.booked_for: str | None = None
        self.callback_end: str | None = None

    def say(self, phrase: str) -> None:
        if self.path and _base(self.path[-1]) == phrase:
            count = _count(self.path[-1]) + 1
            self.path[-1] = f"{phrase} ×{count}"
        else:
            self.path.append(phrase)

    def extend_queue(self, phrase: str) -> None:
        if self.queue_phrase is None:
            self.say(phrase)
        else:
            self.path[self.queue_phrase] += f", {phrase}"

    def event(self, e: CallEvent) -> None:
        handler: Callable[[_Story, str | None, dict[str, Any]], None] | None = \
            STORY_HANDLERS.get(e.kind)
        if handler is not None:
            handler(self, e.node, e.data or {})


def _base(phrase: str) -> str:
    head, sep, tail = phrase.rpartition(" ×")
    return head if sep and tail.isdigit() else phrase


def _count(phrase: str) -> int:
    head, sep, tail = phrase.rpartition(" ×")
    return int(tail) if sep and tail.isdigit() else 1


def _key(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.say(f"pressed {d.get('digits')} ({d.get('choice')})")


def _speech(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    conf = d.get("confidence")
    sure = f", {round(float(conf) * 100)}%" if isinstance(conf, int | float) else ""
    if d.get("text") and d.get("choice"):
        s.say(f"said “{d['text']}” ({d['choice']}{sure})")
    elif d.get("text"):
        s.say(f"said “{d['text']}” (not understood{sure})")
    elif d.get("error"):
        s.say("speech not recognised")


def _no_input(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.say("no answer")


def _no_match(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    if d.get("digits"):
        s.say(f"pressed {d['digits']} (not a choice)")


def _invalid(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.say(f"{humanize(node or 'entry')} refused")


def _collected(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.say(f"{humanize(d.get('var') or node or 'number')} entered")


def _transfer(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.queue_phrase = None
    s.say(f"transferred to {humanize(node or str(d.get('target')))}")


def _transfer_ended(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    status = str(d.get("status") or "ended")
    if status in ANSWERED:
        talked = human_duration(d.get("duration"))
        s.path[-1:] = [f"{s.path[-1]}, talked {talked}" if s.path else f"talked {talked}"]
    else:
        s.say(f"transfer {humanize(status)}")


def _queue_joined(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.say(f"joined queue {d.get('queue')}, {told(d.get('predicted'))}")
    s.queue_phrase = len(s.path) - 1
    s.answered_in_queue = False


def _queue_answered(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.extend_queue(f"answered after {human_duration(d.get('waited'))}")
    s.answered_in_queue = True


def _queue_result(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    waited = human_duration(d.get("waited"))
    result = d.get("result")
    if result == "bridged":
        if not s.answered_in_queue:
            s.extend_queue(f"reached an agent after {waited}")
    elif result == "hangup":
        s.extend_queue(f"waited {waited}, hung up")
    elif result in ("leave", "redirected"):
        s.extend_queue(f"waited {waited}, {s.leaving or 'left the queue'}")
    else:
        s.extend_queue(f"waited {waited}, queue {humanize(str(result))}")
    s.queue_phrase, s.leaving = None, None


def _queue_leave(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    why = {"max_wait": "reached the longest wait allowed",
           "callback": "asked for a callback"}.get(str(d.get("reason")))
    s.leaving = s.leaving or why


def _callback_accepted(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.leaving = "asked for a callback"


def _callback_requested(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    if d.get("via") != "sms":
        return
    if s.queue_phrase is None:  # texted after the call ended
        s.after.append("asked for a callback by text")
    else:
        s.leaving = "asked for a callback by text"


def _callback_scheduled(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    if s.booked_for is None and d.get("due"):
        with contextlib.suppress(ValueError):
            s.booked_for = local_time(datetime.fromisoformat(str(d["due"])), s.zone)


def _callback_answered(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.callback_end = f"answered on attempt {d.get('attempt', 1)}"


def _callback_completed(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.callback_end = s.callback_end or "completed"


def _callback_failed(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    why = d.get("why")
    s.callback_end = "failed" + (f" ({why})" if why else "")


def _callback_cancelled(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    why = d.get("why")
    s.callback_end = "cancelled" + (f" ({why})" if why else "")


def _caller_hung_up(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    if not (s.path and s.path[-1].endswith("hung up")):
        s.say("hung up")


def _error(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.say("an error on our side")


def _survey(s: _Story, node: str | None, d: dict[str, Any]) -> None:
    s.after.append(f"rated the call {d.get('score')}/5")


STORY_HANDLERS: dict[str, Callable[[_Story, str | None, dict[str, Any]], None]] = {
    "key": _key, "speech": _speech, "no_input": _no_input, "no_match": _no_match,
    "invalid": _invalid, "collected": _collected, "transfer": _transfer,
    "transfer_ended": _transfer_ended, "queue_joined": _queue_joined,
    "queue_answered": _queue_answered, "queue_result": _queue_result,
    "queue_leave": _queue_leave, "callback_accepted": _callback_accepted,
    "callback_requested": _callback_requested, "callback_scheduled": _callback_scheduled,
    "callback_answered": _callback_answered, "callback_completed": _callback_completed,
    "callback_failed": _callback_failed, "callback_cancelled": _callback_cancelled,
    "caller_hung_up": _caller_hung_up, "error": _error, "survey_answer": _survey,
}


def story(call: Call, events: Sequence[CallEvent], survey: SmsSurvey | None = None,
          callbacks: Sequence[CallbackRequest] = (), zone: tzinfo = UTC) -> str:
    """The caller's path, then where it ended, then what happened after: one paragraph."""
    s = _Story(zone)
    kinds: set[str] = set()
    for e in events:
        kinds.add(e.kind)
        s.event(e)
    path = list(s.path) or [_silent_path(call)]
    path.append(_ending(call))
    text = " → ".join(path)
    after = _callback_tail(s, kinds, callbacks, zone)
    if survey is not None and survey.score is not None and "survey_answer" not in kinds:
        s.after.append(f"rated the call {survey.score}/5")
    tail = "; ".join(after + s.after)
    text = text[:1].upper() + text[1:]
    return f"{text}; {tail}." if tail else f"{text}."


def _silent_path(call: Call) -> str:
    if call.outcome == "closed":
        return "called outside opening hours"
    if call.outcome == "abandoned":
        return "hung up before choosing anything"
    return "made no choice"


def _ending(call: Call) -> str:
    if call.outcome:
        return OUTCOME_LABELS.get(call.outcome, call.outcome)
    if call.status == "in-progress":
        return "still in progress"
    return humanize(call.status or "unknown")


def _callback_tail(s: _Story, kinds: set[str], callbacks: Sequence[CallbackRequest],
                   zone: tzinfo) -> list[str]:
    booked = {"callback_booked", "callback_on_abandon", "callback_requested",
              "callback_scheduled"} & kinds
    if not booked and not callbacks:
        return []
    head = "callback booked" + (f" for {s.booked_for}" if s.booked_for else "")
    if s.callback_end:
        return [f"{head}, {s.callback_end}"]
    latest = callbacks[-1] if callbacks else None
    if latest is not None and latest.state in ("scheduled", "requested") and latest.attempts:
        due = f", next try {local_time(latest.due_at, zone)}" if latest.due_at else ""
        return [f"{head}, not reached after {latest.attempts} attempt(s){due}"]
    if latest is not None and latest.state in ("dialing", "connected"):
        return [f"{head}, calling now (attempt {latest.attempts})"]
    if latest is not None and latest.state in ("completed", "failed", "cancelled"):
        return [f"{head}, {latest.state}"]
    return [f"{head}, not called yet"]
