"""The words of a call's timeline: a label and a one-line description for each kind of
event, and the durations and wait predictions written the way a supervisor reads them.
Pure, shared by timeline.py's entries and story."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any


def humanize(name: str) -> str:
    """'account_number' -> 'account number', 'front-desk' stays as it is."""
    return name.replace("_", " ").strip()


def human_duration(seconds: Any) -> str:
    """45 -> '45 s', 370 -> '6 min 10 s', 3720 -> '1 h 2 min'; unknown -> '?'."""
    try:
        total = round(float(seconds))
    except (TypeError, ValueError):
        return "?"
    hours, rest = divmod(max(0, total), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def local_time(at: datetime | None, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%H:%M") if at else "?"


def told(predicted: Any) -> str:
    """What the caller was told on joining, near enough: 'told about 3–5 min', from the
    predicted wait up to its p90, as the spoken phrase rounds them ('between 3 and 5
    minutes'); 'told under a minute' below that."""
    if not isinstance(predicted, dict) or predicted.get("p90") is None:
        return "no wait estimate"
    wait = float(predicted.get("wait") or 0)
    if wait < 60:
        return "told under a minute"
    low, high = max(1, round(wait / 60)), round(float(predicted["p90"]) / 60)
    return f"told about {low} min" if high <= low else f"told about {low}–{high} min"


def _interval(predicted: Any) -> str:
    if not isinstance(predicted, dict) or predicted.get("p90") is None:
        return "no prediction"
    if float(predicted["p90"]) < 60:
        return "predicted under a minute"
    return (f"predicted {human_duration(predicted.get('p10'))}–"
            f"{human_duration(predicted.get('p90'))} "
            f"(median {human_duration(predicted.get('wait'))})")


def _quote(text: Any) -> str:
    return f"“{text}”"


def describe_generic(data: dict[str, Any], zone: tzinfo) -> str:
    """An event this page has no words for yet: its fields, so nothing is hidden."""
    return ", ".join(f"{humanize(k)}: {v}" for k, v in data.items()
                     if v not in (None, "", [], {}) and k not in ("token", "context"))


def _prompt(d: dict[str, Any], z: tzinfo) -> str:
    if d.get("text"):
        return _quote(d["text"])
    return f"Played {str(d.get('play', '')).rsplit('/', 1)[-1]}"


def _speech(d: dict[str, Any], z: tzinfo) -> str:
    conf = d.get("confidence")
    sure = f" ({round(float(conf) * 100)}% sure)" if isinstance(conf, int | float) else ""
    if not d.get("text"):
        return "Nothing recognised" + (f": {d['error']}" if d.get("error") else "")
    matched = f" → {d['choice']}" if d.get("choice") else \
        f" → digits {d['digits']}" if d.get("digits") else " → no choice matched"
    return f"Heard {_quote(d['text'])}{sure}{matched}"


def _heard_or_keys(d: dict[str, Any], what: str) -> str:
    if d.get("digits"):
        return f"Pressed {d['digits']}, {what}"
    if d.get("heard"):
        return f"Heard {_quote(d['heard'])}, {what}"
    return what.capitalize()


def _queue_result(d: dict[str, Any], z: tzinfo) -> str:
    result = {"bridged": "talked to an agent", "hangup": "caller hung up",
              "leave": "left the queue", "redirected": "taken out of the queue"}.get(
        str(d.get("result")), humanize(str(d.get("result"))))
    return (f"{d.get('queue') or 'Queue'}: {result}; waited "
            f"{human_duration(d.get('waited'))}, {_interval(d.get('predicted'))}")


def _scheduled(d: dict[str, Any], z: tzinfo) -> str:
    due = d.get("due")
    try:
        when = local_time(datetime.fromisoformat(str(due)), z) if due else "?"
    except ValueError:
        when = str(due)
    return f"For {when}" + (f" ({d['why']})" if d.get("why") else "")


def _attempt(what: str) -> Callable[[dict[str, Any], tzinfo], str]:
    def describe(d: dict[str, Any], z: tzinfo) -> str:
        extra = d.get("outcome") or d.get("why") or d.get("answered_by")
        return f"Attempt {d.get('attempt', '?')}: {what}" + (f" ({extra})" if extra else "")
    return describe


def _why(what: str) -> Callable[[dict[str, Any], tzinfo], str]:
    return lambda d, z: what + (f": {d['why']}" if d.get("why") else "")


DESCRIBE: dict[str, Callable[[dict[str, Any], tzinfo], str]] = {
    "call_started": lambda d, z: f"Flow {d.get('flow')} version {d.get('version')}",
    "prompt": _prompt,
    "key": lambda d, z: f"Pressed {d.get('digits')} → {d.get('choice')}",
    "speech": _speech,
    "no_input": lambda d, z: "Nothing pressed or said",
    "no_match": lambda d, z: _heard_or_keys(d, "not one of the choices"),
    "invalid": lambda d, z: _heard_or_keys(d, "refused"),
    "collected": lambda d, z: f"{humanize(str(d.get('var') or 'entry')).capitalize()}: "
                              f"{d.get('digits')}",
    "route": lambda d, z: f"→ {d.get('to')} ({d.get('reason')})",
    "switch": lambda d, z: f"Matched {d.get('matched')}",
    "split": lambda d, z: f"Branch {d.get('branch')}",
    "lookup": lambda d, z: f"Answered {d.get('status')} in {d.get('elapsed_ms')} ms"
                           + (f", saved {', '.join(d['saved'])}" if d.get("saved") else ""),
    "lookup_failed": lambda d, z: f"{d.get('error') or 'failed'} "
                                  f"(after {d.get('elapsed_ms')} ms)",
    "transfer": lambda d, z: f"To {d.get('target')}",
    "transfer_ended": lambda d, z: f"{humanize(str(d.get('status')))}, "
                                   f"{human_duration(d.get('duration'))}",
    "enqueue": lambda d, z: f"Sent to queue {d.get('queue')}",
    "queue_joined": lambda d, z: f"{d.get('queue')}: {_interval(d.get('predicted'))}",
    "queue_announce": lambda d, z: f"Number {d.get('position')} in line after "
                                   f"{human_duration(d.get('waited'))}: "
                                   f"{_quote(d.get('text', ''))}",
    "queue_answered": lambda d, z: f"{d.get('queue')}: an agent answered after "
                                   f"{human_duration(d.get('waited'))}",
    "queue_result": _queue_result,
    "queue_left": lambda d, z: f"{humanize(str(d.get('result')))} after "
                               f"{human_duration(d.get('waited'))}",
    "queue_leave": lambda d, z: f"Leaving ({humanize(str(d.get('reason')))}) after "
                                f"{human_duration(d.get('waited'))}",
    "callback_offered": lambda d, z: f"After {human_duration(d.get('waited'))}: "
                                     f"{_quote(d.get('text', ''))}",
    "callback_accepted": lambda d, z: f"Said {_quote(d['spoken'])}" if d.get("spoken")
    else f"Pressed {d.get('key')}",
    "callback_refused": lambda d, z: str(d.get("error") or "refused"),
    "callback_booked": lambda d, z: f"We call back {d.get('when')}"
                                    + (" (merged with an earlier request)"
                                       if d.get("merged") else ""),
    "callback_on_abandon": lambda d, z: f"Hung up after {human_duration(d.get('waited'))}; "
                                        f"we call back {d.get('when')}",
    "callback_not_booked": lambda d, z: f"Hung up after {human_duration(d.get('waited'))}; "
                                        f"no callback: {d.get('error')}",
    "callback_requested": lambda d, z: "By text" if d.get("via") == "sms" else
    f"#{d.get('callback')} for {d.get('queue')} ({humanize(str(d.get('reason')))}), "
    f"to {d.get('number')}",
    "callback_scheduled": _scheduled,
    "callback_dialing": _attempt("dialling"),
    "callback_call_placed": _attempt("call placed"),
    "callback_answered": _attempt("answered"),
    "callback_machine": _attempt("voicemail"),
    "callback_retry": _attempt("no luck, will retry"),
    "callback_completed": lambda d, z: "Done",
    "callback_failed": _why("Gave up"),
    "callback_cancelled": _why("Cancelled"),
    "callback_attempt_lost": _why("Attempt lost, rescheduled"),
    "callback_merged": lambda d, z: f"Merged into callback #{d.get('into')}",
    "sms_queued": lambda d, z: f"{humanize(str(d.get('kind')))}: {_quote(d.get('body', ''))}",
    "sms_error": lambda d, z: str(d.get("error")),
    "safe_path": lambda d, z: f"The safe path, after a failure at {d.get('where')}",
    "safe_path_goodbye": lambda d, z: f"No one to put them through to ({d.get('where')})",
    "sms_reply": lambda d, z: f"Understood as {humanize(str(d.get('kind')))}",
    "survey_answer": lambda d, z: f"Scored the call {d.get('score')} out of 5",
    "status": lambda d, z: f"{humanize(str(d.get('status')))} after "
                           f"{human_duration(d.get('duration'))}",
    "caller_hung_up": lambda d, z: "The caller hung up"
                                   + (f" ({d['dial_status']})" if d.get("dial_status") else ""),
    "hangup": lambda d, z: f"Outcome {d.get('outcome')}" if d.get("outcome") else "Hung up",
    "ignored_input": lambda d, z: f"Pressed {d['digits']}" if d.get("digits")
    else str(d.get("event", "")),
}

LABELS = {
    "call_started": "Call started", "prompt": "Prompt", "key": "Key", "speech": "Speech",
    "no_input": "No input", "no_match": "No match", "invalid": "Invalid entry",
    "collected": "Entered", "route": "Route", "switch": "Decision", "split": "Split",
    "lookup": "Lookup", "lookup_failed": "Lookup failed", "transfer": "Transfer",
    "transfer_ended": "Transfer ended", "enqueue": "Queue", "queue_joined": "Joined queue",
    "queue_announce": "Announcement", "queue_answered": "Agent answered",
    "queue_result": "Left queue", "queue_left": "Left queue", "queue_leave": "Leaving queue",
    "callback_offered": "Callback offered", "callback_accepted": "Callback accepted",
    "callback_booked": "Callback booked", "callback_on_abandon": "Callback booked",
    "callback_dialing": "Calling back", "callback_call_placed": "Callback placed",
    "callback_answered": "Callback answered", "callback_retry": "Callback retry",
    "sms_queued": "Text queued", "sms_error": "Text error", "sms_reply": "Text reply",
    "survey_answer": "Survey", "status": "Call ended", "caller_hung_up": "Hung up",
    "hangup": "Hang-up", "error": "Error", "ignored_input": "Ignored key",
    "safe_path": "Put through to a person", "safe_path_goodbye": "Apologised, no one to take it",
}
