"""The engine as plain function calls: a caller waits in a queue, hears honest updates, and
leaves it for an agent, a fallback, or by hanging up."""

from __future__ import annotations

from flows import actions as act
from flows.errors import FlowLoadError
from flows.events import DigitsEntered, QueueLeft, QueueWaiting, WaitEstimate

from .engine_helpers import heard, load, only, play, start

QUEUE_FLOW = """
flow: t
human: "+15550000001"
start: menu
nodes:
  menu:
    type: menu
    prompt: Press 1 for support.
    options: [{key: 1, label: support, goto: hold}]
    fallback: hold
  hold:
    type: enqueue
    queue: support
    say: Please hold for the next agent.
    announce:
      every: 60
      min_change: 60
    hold: [{pause: 20}]
    max_wait: 600
    next: survey
    fallback: sorry
  survey: {type: say, text: Thanks for your call., next: bye}
  sorry: {type: hangup, say: "Sorry, everyone is busy. Please call back later.", outcome: failed}
  bye: {type: hangup}
"""


def five_minutes(seconds: float = 300) -> WaitEstimate:
    return WaitEstimate(seconds, seconds * 0.8, seconds * 1.4, "about 5 minutes")


def queued():  # noqa: ANN201
    flow = load(QUEUE_FLOW)
    session, out = play(flow, start(flow)[0], DigitsEntered("1"))
    return flow, session, out


def test_the_caller_joins_the_named_queue_with_what_they_already_chose() -> None:
    _, session, out = queued()
    assert heard(out) == ["Please hold for the next agent."]
    enqueue = only(out, act.Enqueue)
    assert enqueue.queue == "support" and enqueue.node == "hold"
    assert enqueue.context == {"choices": "support"}
    assert session.node == "hold"


def test_the_first_wait_turn_announces_place_and_wait_at_once() -> None:
    flow, session, _ = queued()
    session, out = play(flow, session, QueueWaiting(3, 0, 3, five_minutes()))
    assert heard(out) == ["You are number 3 in line. Your wait is about 5 minutes."]
    assert only(out, act.Pause).seconds == 20  # then the hold prompts
    log = next(a for a in out if isinstance(a, act.Log) and a.kind == "queue_announce")
    assert log.data["wait"] == 300 and log.data["p10"] == 240 and log.data["p90"] == 420


def test_nothing_new_is_not_announced_again_but_news_is() -> None:
    flow, session, _ = queued()
    session, _ = play(flow, session, QueueWaiting(3, 0, 3, five_minutes()))
    session, out = play(flow, session, QueueWaiting(3, 30, 3, five_minutes(200)))
    assert heard(out) == [], "too soon: within `every`"
    session, out = play(flow, session, QueueWaiting(3, 70, 3, five_minutes(280)))
    assert heard(out) == [], "same place, estimate moved less than min_change"
    session, out = play(flow, session, QueueWaiting(2, 90, 2, five_minutes(240)))
    assert heard(out) == ["You are number 2 in line. Your wait is about 5 minutes."]


def test_without_an_estimate_the_caller_hears_their_place_only() -> None:
    flow = load(QUEUE_FLOW.replace("      min_change: 60\n", "      min_change: 60\n      say: "
                                   "\"You are number {{ queue.position }}.{% if queue.wait %} "
                                   "{{ queue.wait }}.{% endif %}\"\n"))
    session, _ = play(flow, start(flow)[0], DigitsEntered("1"))
    _, out = play(flow, session, QueueWaiting(4, 0, 4, None))
    assert heard(out) == ["You are number 4."]


def test_waiting_too_long_leaves_the_queue_for_the_fallback() -> None:
    flow, session, _ = queued()
    session, out = play(flow, session, QueueWaiting(1, 600, 1, five_minutes()))
    assert out[-1] == act.Leave()
    session, out = play(flow, session, QueueLeft("leave", 601))
    assert heard(out) == ["Sorry, everyone is busy. Please call back later."]
    assert session.outcome == "failed" and session.done


def test_after_the_agent_the_caller_goes_on_with_the_flow() -> None:
    flow, session, _ = queued()
    session, out = play(flow, session, QueueLeft("bridged", 95))
    assert heard(out) == ["Thanks for your call."]
    assert session.outcome == "transferred"


def test_a_caller_who_hangs_up_in_the_queue_is_abandoned_silently() -> None:
    flow, session, _ = queued()
    session, out = play(flow, session, QueueLeft("hangup", 42))
    assert heard(out) == [] and session.done and session.outcome == "abandoned"


def test_a_full_queue_takes_the_fallback() -> None:
    flow, session, _ = queued()
    session, out = play(flow, session, QueueLeft("queue-full", 0))
    assert heard(out) == ["Sorry, everyone is busy. Please call back later."]


def test_a_silent_hold_still_takes_time_so_twilio_does_not_ask_again_at_once() -> None:
    flow = load(QUEUE_FLOW.replace("    hold: [{pause: 20}]\n", "    hold: []\n"))
    session, _ = play(flow, start(flow)[0], DigitsEntered("1"))
    _, out = play(flow, session, QueueWaiting(2, 0, 2, five_minutes()))
    assert only(out, act.Pause).seconds >= 10


def test_a_bad_announcement_template_is_refused_at_its_line() -> None:
    bad = QUEUE_FLOW.replace("      min_change: 60\n",
                             "      min_change: 60\n      say: \"{{ queue.position \"\n")
    try:
        load(bad)
    except FlowLoadError as exc:
        lines = [p.line for p in exc.problems]
        say_line = QUEUE_FLOW.splitlines().index("      min_change: 60") + 2  # the line added
        assert lines == [say_line], exc.problems
    else:
        raise AssertionError("the broken template was accepted")
