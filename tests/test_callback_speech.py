"""A call back asked for by voice on hold: with `speech: stream` the caller's audio streams
through the wait, and saying the offer's words (once it has been made) takes them out of
line to book it, as pressing the key does. Real vosk model, real websocket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr_server import create_app
from ivr_server.simulator import RecordingsServer, SimulatedCall, new_sid
from ivr_server.simulator.queues import SimulatedQueues
from ivr_server.simulator.transport import InProcessTransport
from speech.model import default_model_path

from .callback_rig import new_york_number
from .conftest import AUTH_TOKEN, PUBLIC_URL
from .helpers import call_events
from .speech import audio_fixtures

pytestmark = pytest.mark.slow
phone_audio = audio_fixtures.phone_audio
ACCOUNT_SID = "AC" + "5" * 32
TO = "+15005550402"
FLOW = """\
flow: spoken_offer
language: ko-KR
human: "+15005550006"
speech: stream
start: hold
nodes:
  hold:
    type: enqueue
    queue: spoken-offer
    announce: null
    hold: [{pause: 15}]
    offer_callback: {after: 30, key: "1", words: [예약]}
    callback: book
    fallback: agent
  book:
    type: callback
    say: "Booked, {{ callback.when }}."
    fallback: agent
  agent: { type: transfer, to: "+15005550006" }
"""


@pytest.fixture
def api() -> Iterator[RecordingsServer]:
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def caller(config, clock, flows_dir, api) -> Iterator[SimulatedCall]:  # noqa: ANN001
    # The database outlives tests: this caller and queue are this test's own.
    (flows_dir / "spoken_offer.yaml").write_text(
        FLOW.replace("queue: spoken-offer", f"queue: spoken-{new_sid('')[:10]}"))
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={TO: "spoken_offer"}, settings=config.flows.settings)
           .with_section("twilio", account_sid=ACCOUNT_SID, api_base_url=api.base_url)
           .with_section("speech", model_path=str(default_model_path())))
    app = create_app(cfg, clock=clock)
    transport = InProcessTransport(app, PUBLIC_URL)
    call = SimulatedCall(transport, AUTH_TOKEN, to=TO, from_=new_york_number(),
                         account_sid=ACCOUNT_SID, recordings=api, queues=SimulatedQueues())
    call.app = app  # type: ignore[attr-defined]
    call.dial()
    assert call.waiting_for == "queue" and call.streams, "the hold is listened to"
    yield call
    transport.close()


def test_saying_the_offers_words_on_hold_books_a_call_back(caller, phone_audio):
    heard = caller.wait(40)
    assert any("Press 1 to be called back" in h for h in heard), heard

    after = caller.say(phone_audio.mulaw_wav("예약"))

    assert any(h.startswith("Booked, ") for h in after), after
    kinds = [e.kind for e in call_events(caller.app, caller.call_sid)]
    assert "callback_accepted" in kinds and "callback_requested" in kinds
    assert "queue_result" in kinds  # counted as leaving the line


def test_words_said_before_the_offer_change_nothing(caller, phone_audio):
    assert caller.say(phone_audio.mulaw_wav("예약")) == []
    assert caller.waiting_for == "queue"
    heard = caller.wait(40)
    assert any("Press 1 to be called back" in h for h in heard), heard
