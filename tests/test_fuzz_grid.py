"""Every bad value into every parameter of every webhook, one at a time, exhaustively.

Random search rarely pairs the one state a handler needs (a call on hold, a callback being
dialled) with the one value that breaks it, so this grid does it on purpose: each route is
set up in the state where its handler does real work, then each of its parameters gets
each odd value (missing, repeated before and after a good one, wrong-typed, unicode, huge),
signed as Twilio signs. Hypothesis explores combinations in the other test_fuzz files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ivr_server import create_app
from ivr_server.simulator import new_sid

from . import fuzz_helpers as fz
from .callback_rig import new_york_number
from .fuzz_helpers import *  # noqa: F403  (the fixtures, used by name)
from .fuzz_helpers import BIG, NUMBERS, NUMERIC, ODD, Twilio

AGENTS_TOKEN = "agents-token-" + "9" * 20
Fields = dict[str, str]
Setup = Callable[[Twilio, dict[str, Any]], tuple[Fields, Fields]]


@pytest.fixture
def app(config, clock):  # noqa: ANN001, ANN201 - every optional webhook feature switched on
    app = create_app(config.with_section("queues", api_token=AGENTS_TOKEN), clock=clock)
    yield app
    app.extensions["ivr"].redis.close()



# -- each route, in the state where its handler does real work ------------------------------


def _live(t: Twilio, memo: dict[str, Any], keys: str = "") -> tuple[str, Fields]:
    """One call for the whole route (made once), and its current node and turn."""
    if "sid" not in memo:
        memo["sid"] = fz.start_call(t)
        if keys:
            fz.press(t, memo["sid"], keys)
    node, turn = fz.where(t, memo["sid"])
    return memo["sid"], {"node": node or "", "turn": turn}


def incoming(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    return dict(fz.call_fields(fz.new_call_sid(), CallStatus="ringing")), {}


def gather_input(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid, query = _live(t, memo)
    return dict(fz.call_fields(sid, Digits="9", RecordingUrl="https://api.twilio.com/r")), \
        {**query, "stream": f"{query['node']}.{query['turn']}", "timeout": "1"}


def dial(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid = fz.start_call(t)
    fz.press(t, sid, "3")  # put through to customer care: a Dial is ringing
    node, turn = fz.where(t, sid)
    return dict(fz.call_fields(sid, DialCallStatus="completed", DialCallDuration="42")), \
        {"node": node or "", "turn": turn}


def status(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid, _ = _live(t, memo, keys="0")  # on hold, so the queue's end is handled too
    return dict(fz.call_fields(sid, CallStatus="completed", CallDuration="42")), {}


def whisper(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    return dict(fz.call_fields("CA" + "3" * 32)), {"c_name": "Ada", "c_account_number": "1234"}


def fallback(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid, _ = _live(t, memo)
    return dict(fz.call_fields(sid, ErrorCode="11200")), {}


def queue_wait(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid, query = _live(t, memo, keys="0")
    return dict(fz.call_fields(sid, QueueTime="95", QueuePosition="2", CurrentQueueSize="3",
                            QueueSid="QU" + "1" * 32)), query


def queue_result(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid = fz.start_call(t)
    fz.press(t, sid, "0")
    node, turn = fz.where(t, sid)
    t.post("/voice/queue/wait", fz.call_fields(sid, QueueTime="200", QueuePosition="1"),
           {"node": node or "", "turn": turn})
    return dict(fz.call_fields(sid, QueueResult="hangup", QueueTime="200")), \
        {"node": node or "", "turn": turn}


def queue_connect(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid, _ = _live(t, memo, keys="0")
    return dict(fz.call_fields(sid, DequeingCallSid="CA" + "4" * 32, QueueTime="30")), \
        {"queue": "front-desk"}


def queue_offer(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    sid, query = _live(t, memo, keys="0")
    return dict(fz.call_fields(sid, Digits="1")), query


def dialing_callback(t: Twilio) -> tuple[int, str]:
    """A callback being dialled right now: its id and this attempt's token."""
    s = t.app.extensions["ivr"]
    now = s.clock()
    store = s.callbacks.store
    booked = store.book(number=new_york_number(), queue="front-desk", reason="fuzz", at=now,
                        flow="company")
    row = store.schedule(booked.request.id, now, now)
    row = store.claim_attempt(row.id, row.seq, now)
    return row.id, row.dial_token


def callback_answer(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    cb, token = dialing_callback(t)
    return dict(fz.call_fields(fz.new_call_sid(), AnsweredBy="human", Direction="outbound-api")), \
        {"cb": str(cb), "token": token}


def callback_status(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    cb, token = dialing_callback(t)
    return dict(fz.call_fields(fz.new_call_sid(), CallStatus="busy", CallDuration="0",
                            AnsweredBy="human")), {"cb": str(cb), "token": token}


def sms_incoming(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    return {"From": new_york_number(), "To": "+15005550006", "Body": "3",
            "MessageSid": new_sid("SM"), "AccountSid": "AC" + "1" * 32}, {}


def sms_status(t: Twilio, memo: dict[str, Any]) -> tuple[Fields, Fields]:
    s = t.app.extensions["ivr"]
    sid = new_sid("SM")
    s.sms_store.add_message(direction="outbound", kind="wait_estimate",
                            to_number=new_york_number(), from_number="+15005550006",
                            body="About 5 minutes.", status="sent", at=s.clock(),
                            message_sid=sid)
    return {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}, {}


@dataclass(frozen=True)
class Route:
    path: str
    setup: Setup
    fields: tuple[str, ...]
    query: tuple[str, ...] = ()


CALL = ("CallSid", "From", "To", "CallStatus")
ROUTES = [
    Route("/voice/incoming", incoming, (*CALL, "AccountSid", "Direction")),
    Route("/voice/input", gather_input, ("CallSid", "Digits", "RecordingUrl"),
          ("node", "turn", "stream", "timeout")),
    Route("/voice/dial", dial, ("CallSid", "DialCallStatus", "DialCallDuration", "CallStatus"),
          ("node", "turn")),
    Route("/voice/status", status, ("CallSid", "CallStatus", "CallDuration")),
    Route("/voice/whisper", whisper, ("CallSid",), ("c_name", "c_account_number")),
    Route("/voice/fallback", fallback, ("CallSid", "ErrorCode", "To")),
    Route("/voice/queue/wait", queue_wait,
          ("CallSid", "QueueTime", "QueuePosition", "CurrentQueueSize"),
          ("node", "turn", "failing_since", "failed_at")),
    Route("/voice/queue/result", queue_result, ("CallSid", "QueueResult", "QueueTime"),
          ("node", "turn")),
    Route("/voice/queue/connect", queue_connect, ("CallSid", "DequeingCallSid", "QueueTime"),
          ("queue",)),
    Route("/voice/queue/offer", queue_offer, ("CallSid", "Digits"), ("node", "turn")),
    Route("/voice/callback/answer", callback_answer, ("CallSid", "AnsweredBy", "From"),
          ("cb", "token")),
    Route("/voice/callback/status", callback_status,
          ("CallSid", "CallStatus", "CallDuration", "AnsweredBy"), ("cb", "token")),
    Route("/sms/incoming", sms_incoming, ("From", "Body", "MessageSid", "To")),
    Route("/sms/status", sms_status, ("MessageSid", "MessageStatus", "ErrorCode")),
]
BIG_FEW = [BIG[0], BIG[2]]


def bad_values(name: str) -> list[str | None]:
    """None: the parameter left out."""
    if name in NUMERIC:
        return [None, *NUMBERS, *ODD[:12], *BIG_FEW]
    return [None, *ODD, *BIG_FEW]


def variants(name: str, good: str) -> Iterator[list[str]]:
    """The values one parameter is sent with: left out, each bad value, and repeated."""
    for value in bad_values(name):
        yield [] if value is None else [value]
    for value in ("", "9" * 30, "\x00", "😀"):
        yield [good, value]
        yield [value, good]


@pytest.mark.parametrize("route", ROUTES, ids=[r.path for r in ROUTES])
def test_every_parameter_with_every_odd_value_gets_a_valid_answer(app, route: Route, crashes,
                                                                   place_call):
    t = Twilio(app)
    memo: dict[str, Any] = {}
    for name in route.fields + route.query:
        in_query = name in route.query
        for variant in variants(name, "x"):
            fields, query = route.setup(t, memo)
            good = (query if in_query else fields).get(name, "")
            sent = [v if v != "x" else good for v in variant]
            pairs = [(k, v) for k, v in (query if in_query else fields).items() if k != name]
            pairs += [(name, v) for v in sent]
            if in_query:
                t.post(route.path, list(fields.items()), pairs)
            else:
                t.post(route.path, pairs, query)
            try:
                crashes.check()
            except AssertionError as exc:
                raise AssertionError(f"{route.path} {name}={[v[:40] for v in sent]}: {exc}"
                                     ) from None
    fz.assert_state_sound(app, t.sids)
    fz.assert_demo_still_works(place_call)


def test_every_twilio_webhook_in_the_url_map_is_in_this_grid(app):
    """A webhook added later is fuzzed too: its route must be listed above to pass."""
    posted = {r.rule for r in app.url_map.iter_rules() if "POST" in (r.methods or ())
              and r.rule.startswith(("/voice/", "/sms/"))}
    assert posted, "no Twilio webhooks found in the URL map"
    missing = sorted(posted - {r.path for r in ROUTES})
    assert not missing, f"add these webhooks to ROUTES in {__file__}: {missing}"


# -- the agents API (a bearer token, not a signature) ---------------------------------------

JSON_ODD: list[Any] = [None, 0, -1, 3.5, 10**30, True, [], {}, ["support"], {"q": 1},
                       "😀" * 20, "\x00", "a" * 100_000, " ", ""]


def test_the_agents_api_answers_any_body_with_json_and_no_5xx(app):
    client = app.test_client()
    auth = {"Authorization": f"Bearer {AGENTS_TOKEN}"}
    sent = 0
    for path in ("/agents/sign-in", "/agents/sign-out"):
        for field in ("queue", "agent"):
            good = {"queue": "front-desk", "agent": "ada"}
            for value in [*ODD, *BIG_FEW]:
                check_agents(client.post(path, data={**good, field: value}, headers=auth))
                sent += 1
            for odd in JSON_ODD:
                check_agents(client.post(path, json={**good, field: odd}, headers=auth))
                sent += 1
            for raw in (b"{", b"[1,2]", b"null", b"\xff\xfe", b'{"queue": "\\ud800"}',
                        json.dumps({"queue": ["a"] * 1000}).encode()):
                check_agents(client.post(path, data=raw, headers={
                    **auth, "Content-Type": "application/json"}))
    for value in [*ODD, *BIG_FEW]:
        check_agents(client.get("/agents", query_string={"queue": value}, headers=auth))
    on_duty = app.extensions["ivr"].queues.on_duty("front-desk")
    assert "ada" in on_duty or not on_duty
    assert all(isinstance(a, str) and 0 < len(a) <= 64 for a in on_duty), on_duty
    assert sent > 100


def check_agents(resp: Any) -> None:
    where = f"agents API answered {resp.status_code}: {resp.get_data()[:200]!r}"
    assert resp.status_code in (200, 400, 413, 415), where
    if resp.status_code in (200, 400):
        assert resp.is_json, where
    if resp.status_code == 400:
        assert resp.get_json().get("error"), where
