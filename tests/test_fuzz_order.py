"""Replayed and out-of-order webhooks: the same signed request twice, an action URL for a node
the call has left, a status callback before the call started, a queue's wait URL after the
call ended, keys for a finished call. Each is answered with valid TwiML and none moves the
call backwards, revives it, or counts it twice.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from ivr_server import create_app
from ivr_server.models import Call

from . import fuzz_helpers as fz
from .callback_rig import MovableClock, new_york_number
from .fuzz_helpers import *  # noqa: F403  (the fixtures, used by name)
from .fuzz_helpers import FUZZ, Twilio
from .helpers import call_events

ENDED = ("completed", "busy", "no-answer", "failed", "canceled")


def _session(t: Twilio, sid: str) -> Any:
    return t.app.extensions["ivr"].sessions.load(sid)


def _rows(t: Twilio, sid: str) -> list[Call]:
    services = t.app.extensions["ivr"]
    services.writer.drain()
    with services.session_factory() as db:
        return list(db.scalars(select(Call).where(Call.call_sid == sid)))


def _waiting(t: Twilio, sid: str) -> bool:
    return any(s == sid for s, _ in t.app.extensions["ivr"].queues.waiting("front-desk"))


def _replay(t: Twilio, path: str, fields: list[tuple[str, str]], query: dict[str, str]
            ) -> tuple[Any, Any]:
    return t.post(path, fields, query), t.post(path, fields, query)


def test_a_replayed_key_press_is_taken_once(twilio: Twilio, crashes):
    sid = fz.start_call(twilio)
    node, turn = fz.where(twilio, sid)
    first, again = _replay(twilio, "/voice/input", fz.call_fields(sid, Digits="1"),
                           {"node": node or "", "turn": turn})
    assert b"eight digit account number" in first.get_data()
    assert b"eight digit account number" in again.get_data()  # asked again, not advanced
    session = _session(twilio, sid)
    assert (session.node, session.choices) == ("account_number", ["billing"])
    keys = [e for e in call_events(twilio.app, sid) if e.kind == "key"]
    assert [e.data["choice"] for e in keys] == ["billing"]
    crashes.check()


def test_a_replayed_incoming_call_carries_on_and_logs_one_call(twilio: Twilio, crashes):
    sid = fz.start_call(twilio)
    fz.press(twilio, sid, "1")
    again = twilio.post("/voice/incoming", fz.call_fields(sid, CallStatus="ringing"))
    assert b"eight digit account number" in again.get_data()  # where the call is, not the start
    assert fz.where(twilio, sid)[0] == "account_number"
    assert len(_rows(twilio, sid)) == 1
    crashes.check()


def test_a_replayed_end_of_call_is_counted_once(twilio: Twilio, app, crashes):
    sid = fz.start_call(twilio)
    fz.press(twilio, sid, "0")
    end = fz.call_fields(sid, CallStatus="completed", CallDuration="61")
    _replay(twilio, "/voice/status", end, {})
    rows = _rows(twilio, sid)
    assert [(r.status, r.outcome, r.duration) for r in rows] == [("completed", "abandoned", 61)]
    assert not _waiting(twilio, sid)
    fz.assert_state_sound(app, [sid])
    crashes.check()


def test_a_replayed_hang_up_on_hold_books_one_callback(twilio: Twilio, app, crashes):
    number = new_york_number()  # its own: the database outlives test runs
    sid = fz.start_call(twilio, From=number)
    fz.press(twilio, sid, "0")
    node, turn = fz.where(twilio, sid)
    query = {"node": node or "", "turn": turn}
    twilio.post("/voice/queue/wait", fz.call_fields(sid, QueueTime="150", QueuePosition="1",
                                                 From=number), query)
    _replay(twilio, "/voice/queue/result", fz.call_fields(sid, QueueResult="hangup",
                                                       QueueTime="150"), query)
    booked = app.extensions["ivr"].callbacks.store.for_call(sid)
    assert len(booked) == 1  # hung up after 150 s on hold: called back, once
    crashes.check()


def test_an_action_url_for_a_node_the_call_has_left_changes_nothing(twilio: Twilio, crashes):
    sid = fz.start_call(twilio)
    fz.press(twilio, sid, "1")
    before = _session(twilio, sid)
    for node, turn in (("main_menu", str(before.turn - 1)), ("front_desk", str(before.turn)),
                       ("account_number", str(before.turn + 5)), ("", "")):
        for path in ("/voice/input", "/voice/dial", "/voice/queue/result",
                     "/voice/queue/offer"):
            twilio.post(path, fz.call_fields(sid, Digits="0", DialCallStatus="completed",
                                          QueueResult="bridged"),
                        {"node": node, "turn": turn})
    after = _session(twilio, sid)  # asked again (a new turn), but nothing was chosen
    assert (after.node, after.choices, after.vars, after.done) == \
        (before.node, before.choices, before.vars, before.done)
    assert not _waiting(twilio, sid)
    crashes.check()


def test_a_status_callback_before_the_call_started_leaves_one_sane_row(twilio: Twilio, app,
                                                                       crashes):
    sid = fz.new_call_sid()
    twilio.post("/voice/status", fz.call_fields(sid, CallStatus="ringing"))
    twilio.post("/voice/status", fz.call_fields(sid, CallStatus="completed", CallDuration="3"))
    assert _session(twilio, sid) is None  # nothing was started for a call never answered
    rows = _rows(twilio, sid)
    assert [(r.status, r.duration) for r in rows] == [("completed", 3)]
    fz.assert_state_sound(app, [sid])
    crashes.check()


def test_a_first_webhook_handled_after_the_end_does_not_date_the_call_after_it(config):
    """Under load the status callback can be handled before the slow first webhook."""
    clock = MovableClock()
    app = create_app(config, clock=clock)
    late = Twilio(app)
    sid = fz.new_call_sid()
    late.post("/voice/status", fz.call_fields(sid, CallStatus="completed", CallDuration="3"))
    clock.advance(5)
    late.post("/voice/incoming", fz.call_fields(sid, CallStatus="ringing"))
    [row] = _rows(late, sid)
    assert row.started_at <= row.ended_at
    assert (row.status, row.from_number) == ("completed", "+14155550100")  # details filled in
    fz.assert_state_sound(app, [sid])
    app.extensions["ivr"].redis.close()


def test_webhooks_after_the_call_ended_do_not_bring_it_back(twilio: Twilio, app, crashes):
    sid = fz.start_call(twilio)
    fz.press(twilio, sid, "0")  # on hold
    node, turn = fz.where(twilio, sid)
    query = {"node": node or "", "turn": turn}
    twilio.post("/voice/status", fz.call_fields(sid, CallStatus="completed", CallDuration="30"))
    wait = twilio.post("/voice/queue/wait", fz.call_fields(sid, QueueTime="31"), query)
    assert b"<Pause" in wait.get_data()  # held quietly until Twilio notices
    twilio.post("/voice/queue/result", fz.call_fields(sid, QueueResult="hangup", QueueTime="31"),
                query)
    twilio.post("/voice/input", fz.call_fields(sid, Digits="1"), query)
    twilio.post("/voice/queue/offer", fz.call_fields(sid, Digits="1"), query)
    twilio.post("/voice/dial", fz.call_fields(sid, DialCallStatus="completed"), query)
    twilio.post("/voice/incoming", fz.call_fields(sid, CallStatus="ringing"))
    session = _session(twilio, sid)
    assert session is None or session.done
    assert not _waiting(twilio, sid)
    assert [(r.status, r.outcome) for r in _rows(twilio, sid)] == [("completed", "abandoned")]
    fz.assert_state_sound(app, [sid])
    crashes.check()


# -- any order at all ----------------------------------------------------------------------

STEPS = st.one_of(
    st.tuples(st.just("press"), st.sampled_from(["0", "1", "3", "9", "12345674", ""]),
              st.booleans()),
    st.tuples(st.just("status"), st.sampled_from(["ringing", "in-progress", *ENDED]),
              st.just(True)),
    st.tuples(st.just("wait"), st.sampled_from(["0", "95", "400"]), st.booleans()),
    st.tuples(st.just("result"), st.sampled_from(["bridged", "hangup", "leave", "error",
                                                  "redirected"]), st.booleans()),
    st.tuples(st.just("dial"), st.sampled_from(["completed", "busy", "no-answer"]),
              st.booleans()),
    st.tuples(st.just("offer"), st.sampled_from(["1", "2"]), st.booleans()),
    st.tuples(st.just("incoming"), st.just(""), st.just(True)),
    st.tuples(st.just("replay"), st.just(""), st.just(True)),
)
PATHS = {"press": "/voice/input", "status": "/voice/status", "wait": "/voice/queue/wait",
         "result": "/voice/queue/result", "dial": "/voice/dial", "offer": "/voice/queue/offer",
         "incoming": "/voice/incoming"}
FIELDS = {"press": "Digits", "status": "CallStatus", "wait": "QueueTime",
          "result": "QueueResult", "dial": "DialCallStatus", "offer": "Digits"}


def test_any_order_of_webhooks_keeps_the_call_sound(twilio: Twilio, app, crashes,
                                                     place_call):
    number = new_york_number()

    @FUZZ
    @given(steps=st.lists(STEPS, min_size=1, max_size=8))
    def run(steps: list[tuple[str, str, bool]]) -> None:
        sid = fz.start_call(twilio, From=number)
        last: tuple[str, list[tuple[str, str]], dict[str, str]] | None = None
        ended, turn_seen = False, -1
        for kind, value, current in steps:
            if kind == "replay":
                if last is not None:
                    twilio.post(*last)
                continue
            session = _session(twilio, sid)
            node, turn = (session.node or "", session.turn) if session else ("", 0)
            query = {"node": node, "turn": str(turn if current else turn - 1)}
            extra = {FIELDS[kind]: value} if kind in FIELDS else {}
            extra |= {"CallDuration": "12", "QueueTime": extra.get("QueueTime", "95")}
            fields = fz.call_fields(sid, **extra)
            last = (PATHS[kind], fields, query)
            twilio.post(*last)
            crashes.check()
            ended = ended or (kind == "status" and value in ENDED)
            after = _session(twilio, sid)
            if after is not None:
                assert after.turn >= turn_seen, f"the call went back a turn after {kind}"
                turn_seen = after.turn
            if ended:
                assert after is None or after.done, f"{kind} brought an ended call back"
                assert not _waiting(twilio, sid), f"{kind} put an ended call back on hold"
        services = app.extensions["ivr"]
        services.writer.drain()
        with services.session_factory() as db:
            count = db.scalar(select(func.count()).select_from(Call)
                              .where(Call.call_sid == sid))
        assert count == 1

    run()
    fz.assert_state_sound(app, twilio.sids)
    fz.assert_demo_still_works(place_call)
