"""The webhook-fuzzing harness shared by tests/test_webhook_fuzz.py and the other
tests/test_fuzz_*.py files: requests signed as Twilio signs them, value strategies, the
answer and state checks, and the `twilio` and `crashes` fixtures.

A test module takes the fixtures with `from .fuzz_helpers import *` (pytest finds a fixture
by its name in the module) and the rest by name.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ivr_server.models import CALL_OUTCOMES, CALL_STATUSES, Call, CallEvent
from ivr_server.voice import SID

from . import twiml_validator
from .conftest import AUTH_TOKEN, PUBLIC_URL

__all__ = ["crashes", "twilio"]  # the fixtures, for `import *`

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
HUGE = 100_000
COMPANY = "+15005550006"
STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "no-answer", "failed",
            "canceled")

# -- values Twilio would never send ---------------------------------------------------------

ODD = ["", " ", "\x00", "a\x00b", "\x01\x02\x1f\x7f", "\u202e+14155550100", "\u200f\u05e9\u05dc",
       "😀" * 8, "١٢٣", "²", "٣٠", "Ａ１", "-5", "-1", "0", "3.5", "1e9", " 7 ", "+7", "9" * 30,
       "9" * 5000, "NaN", "inf", "null", "true", "[]", "{}", "<Say>x</Say>", "]]>&amp;<",
       "%00", "\ufffe\uffff", "\U0010fffd", "\r\n", "in-progress\x00", "ANONYMOUS", "client:x",
       "sip:a@b", "+1 (415) 555-0100", "CA" + "0" * 32, "'; DROP TABLE calls; --"]
BIG = ["A" * HUGE, "9" * HUGE, "😀" * (HUGE // 4), "\x00" * HUGE, "<" * HUGE]
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
VALUES = st.one_of(st.sampled_from(ODD), TEXT, st.integers(-10**15, 10**15).map(str),
                   st.floats().map(repr), st.sampled_from(BIG))


# Wrong types for a field that should hold a whole number of seconds, a count or an id.
NUMBERS = ["9" * 5000, "9" * 30, "²", "١٢٣", "٣", "-5", "-0", "3.5", "+7", " 7 ", "1e9", "0x1f",
           "", "NaN", "4" * 19, "00000000000000000000042"]
NUMERIC = ("CallDuration", "DialCallDuration", "QueueTime", "QueuePosition",
           "CurrentQueueSize", "ErrorCode", "turn", "cb", "RecordingDuration")


def values(domain: Sequence[str] = (), name: str = "") -> st.SearchStrategy[str]:
    """Odd values; with a domain, its real values too (so handlers get past their checks);
    a field that takes a number gets wrong-typed numbers half the time."""
    choices = [VALUES]
    if domain:
        choices.insert(0, st.sampled_from(list(domain)))
    if name in NUMERIC:
        return st.one_of(st.sampled_from(NUMBERS), st.one_of(*choices))
    return st.one_of(*choices)


def params(spec: Mapping[str, Sequence[str] | st.SearchStrategy[str]]
           ) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Form fields: each sent once (mostly), left out, or repeated with different values."""
    fields = {}
    for name, domain in spec.items():
        one = domain if isinstance(domain, st.SearchStrategy) else values(domain, name)
        fields[name] = st.sampled_from(["once", "once", "once", "out", "repeated"]).flatmap(
            lambda mode, one=one: one.map(lambda v: [v]) if mode == "once" else
            st.none() if mode == "out" else st.lists(one, min_size=2, max_size=3))
    extra = st.lists(st.tuples(st.sampled_from(["Extra", "CallSid", "Digits", "😀", "a b"]),
                               VALUES), max_size=2)

    def flatten(d: dict[str, list[str] | None], more: list[tuple[str, str]]
                ) -> list[tuple[str, str]]:
        return [(k, v) for k, vs in d.items() if vs is not None for v in vs] + more

    return st.builds(flatten, st.fixed_dictionaries(fields), extra)


# -- signed requests and what must come back ------------------------------------------------


class Twilio:
    """Posts webhooks signed exactly as Twilio signs them, and checks every answer."""

    def __init__(self, app: Any):
        self.app = app
        self.client = app.test_client()
        self.signer = RequestValidator(AUTH_TOKEN)  # Twilio's own helper, not the server's
        self.sids: set[str] = set()  # every CallSid sent, for the state checks
        self.limit = app.config.get("MAX_FORM_MEMORY_SIZE") or 500_000

    def post(self, path: str, fields: Iterable[tuple[str, str]],
             query: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> Any:
        form = MultiDict(list(fields))
        self.sids.update(v for v in form.getlist("CallSid") if len(v) <= 64)
        qs = urlencode(list(query.items()) if isinstance(query, Mapping) else list(query))
        url = path + (f"?{qs}" if qs else "")
        resp = self.client.post(url, data=form, base_url=PUBLIC_URL, headers={
            "X-Twilio-Signature": self.signer.compute_signature(PUBLIC_URL + url, form)})
        check_answer(path, resp, too_big=len(urlencode(list(form.items(multi=True))))
                     > self.limit)
        return resp


def check_answer(path: str, resp: Any, *, too_big: bool = False) -> None:
    """Twilio must get an answer it can act on; never a 5xx, never a refused signature."""
    body = resp.get_data()
    where = f"{path} answered {resp.status_code}: {body[:300]!r}"
    assert resp.status_code < 500, where
    assert resp.status_code != 403, f"the signed request did not reach the handler: {where}"
    if too_big and resp.status_code == 413:
        return  # over the form size limit: refused before any handler ran
    if path == "/sms/status":
        assert resp.status_code in (200, 204), where
        return
    assert resp.status_code == 200, where
    assert resp.mimetype == "text/xml", where
    if path.startswith("/sms/"):
        twiml_validator.messaging(body)
    else:
        twiml_validator.voice(body)


@pytest.fixture
def twilio(app: Any) -> Twilio:
    return Twilio(app)


class CrashWatch(logging.Handler):
    """Errors logged with a traceback: a handler crashed and the safe path hid it."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None:
            self.crashes.append(record)

    def check(self) -> None:
        if self.crashes:
            first = self.crashes[0]
            text = logging.Formatter().formatException(first.exc_info)  # type: ignore[arg-type]
            self.crashes.clear()
            raise AssertionError(f"a handler crashed behind the safe path: "
                                 f"{first.getMessage()[:300]}\n{text[-1500:]}")


def watching_crashes() -> Iterator[CrashWatch]:
    """For a `crashes` fixture: collects what the server's loggers report with a traceback."""
    watch = CrashWatch()
    logger = logging.getLogger("ivr_server")
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)


@pytest.fixture
def crashes() -> Iterator[CrashWatch]:
    yield from watching_crashes()


# -- live calls to aim at -------------------------------------------------------------------


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def call_fields(sid: str, **extra: str) -> list[tuple[str, str]]:
    fields = {"CallSid": sid, "AccountSid": "AC" + "1" * 32, "From": "+14155550100",
              "To": COMPANY, "CallStatus": "in-progress", "Direction": "inbound",
              "ApiVersion": "2010-04-01", **extra}
    return list(fields.items())


def start_call(twilio: Twilio, sid: str | None = None, **extra: str) -> str:
    """A well-formed call that has reached the demo's main menu."""
    sid = sid or new_call_sid()
    twilio.post("/voice/incoming", call_fields(sid, CallStatus="ringing", **extra))
    assert where(twilio, sid)[0] == "main_menu"
    return sid


def where(twilio: Twilio, sid: str) -> tuple[str | None, str]:
    session = twilio.app.extensions["ivr"].sessions.load(sid)
    assert session is not None, f"call {sid} has no session"
    return session.node, str(session.turn)


def press(twilio: Twilio, sid: str, digits: str) -> Any:
    node, turn = where(twilio, sid)
    return twilio.post("/voice/input", call_fields(sid, Digits=digits),
                       {"node": node or "", "turn": turn})


def turn_query(twilio: Twilio, sid: str, extra: Sequence[str] = ()
               ) -> st.SearchStrategy[list[tuple[str, str]]]:
    """node/turn: the call's own half the time (so the handler runs), else someone else's,
    garbage or missing."""
    node, turn = where(twilio, sid)
    own = [("node", node or ""), ("turn", turn)]
    odd = params({"node": [node or "", "main_menu", "front_desk", "nowhere"],
                  "turn": [turn, str(int(turn) + 1), "-1", "1.5", "０"]})
    more = params({name: () for name in extra})
    return st.builds(lambda nt, rest: nt + rest, st.one_of(st.just(own), odd), more)


# -- the state must stay sound --------------------------------------------------------------


def assert_state_sound(app: Any, sids: Iterable[str]) -> None:
    """Sessions load or are gone; the call log lost nothing and holds no impossible rows."""
    services = app.extensions["ivr"]
    services.writer.drain()
    dead = services.redis.lrange(services.calllog.dead_key, 0, 2)
    assert not dead, f"the database rejected call-log records: {dead}"
    sids = sorted(set(sids))
    for sid in sids:
        services.sessions.load(sid)  # raises if a session no longer loads
    sids = sorted({sid.replace("\x00", "") for sid in sids})  # as text columns store them
    with services.session_factory() as db:
        rows = list(db.scalars(select(Call).where(Call.call_sid.in_(sids))))
        dupes = db.execute(select(Call.call_sid, func.count()).where(Call.call_sid.in_(sids))
                           .group_by(Call.call_sid).having(func.count() > 1)).all()
        kinds = set(db.scalars(select(CallEvent.kind).where(CallEvent.call_sid.in_(sids))))
    assert not dupes, f"more than one call row for {dupes}"
    forged = [sid for sid in sids if not SID.fullmatch(sid)]
    with services.session_factory() as db:
        logged = set(db.scalars(select(CallEvent.call_sid).where(CallEvent.call_sid.in_(forged))))
    logged |= {row.call_sid for row in rows if row.call_sid in forged}
    assert not logged, f"malformed CallSids made it into the call log: {sorted(logged)!r}"
    for row in rows:
        assert row.status in CALL_STATUSES, (row.call_sid, row.status)
        assert row.outcome is None or row.outcome in CALL_OUTCOMES, (row.call_sid, row.outcome)
        assert row.duration is None or 0 <= row.duration < 10**7, (row.call_sid, row.duration)
        assert row.started_at is not None
        assert row.ended_at is None or row.ended_at >= row.started_at, \
            (row.call_sid, "ended before it started")
    assert all(kind and len(kind) <= 40 for kind in kinds)


def assert_demo_still_works(place_call: Any) -> None:
    """A fresh, well-formed call walks the demo flow to a person as it always did."""
    call = place_call("+14155550177")
    call.expect_heard("Thanks for calling Acme.")
    call.expect_heard("For billing, press 1")
    call.press("3")
    call.expect_heard("I'm putting you straight through to our customer care team.")
    assert call.transferred_to is not None and call.transferred_to.target == COMPANY
