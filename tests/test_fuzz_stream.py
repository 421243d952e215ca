"""Bad input on the media stream websocket (path 2 of speech): a signed handshake followed by
messages Twilio would never send. The server drops what it cannot read without crashing,
and the call goes on: keys still answer the prompt and a fresh call still works.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from simple_websocket import Client, ConnectionClosed

from ivr_server import create_app
from ivr_server.simulator import RecordingsServer, SimulatedCall
from ivr_server.simulator.transport import InProcessTransport, twilio_signature
from speech.model import default_model_path

from . import fuzz_helpers as fz
from .conftest import AUTH_TOKEN, PUBLIC_URL
from .fuzz_helpers import *  # noqa: F403  (the fixtures, used by name)
from .fuzz_helpers import BIG, ODD, Twilio
from .test_speech_stream import ACCOUNT_SID, STREAM_FLOW, TO

pytestmark = pytest.mark.slow
STREAM_URL = PUBLIC_URL.replace("https://", "wss://") + "/voice/stream"



@pytest.fixture
def api() -> Iterator[RecordingsServer]:
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def transport(config, clock, flows_dir, api) -> Iterator[InProcessTransport]:  # noqa: ANN001
    (flows_dir / "streamed.yaml").write_text(STREAM_FLOW)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={TO: "streamed"}, settings=config.flows.settings)
           .with_section("twilio", account_sid=ACCOUNT_SID, api_base_url=api.base_url)
           .with_section("speech", model_path=str(default_model_path())))
    transport = InProcessTransport(create_app(cfg, clock=clock), PUBLIC_URL)
    yield transport
    transport.close()


def _call(transport: InProcessTransport, api: RecordingsServer) -> SimulatedCall:
    call = SimulatedCall(transport, AUTH_TOKEN, to=TO, account_sid=ACCOUNT_SID, recordings=api)
    call.dial()
    assert call.streams, "the streaming prompt opened a media stream"
    return call


def _media(payload: Any, **extra: Any) -> str:
    return json.dumps({"event": "media", "media": {"track": "inbound", "payload": payload,
                                                   **extra}})


GARBAGE: list[str | bytes] = [
    "not json", "", "[]", "null", "42", '"media"', "{", '{"event": 5}', '{"event": null}',
    '{"event": "media"}', '{"event": "media", "media": []}', '{"event": "media", "media": 7}',
    _media("%%% not base64 %%%"), _media(12345), _media(None), _media(["a"]), _media("😀"),
    _media(base64.b64encode(b"\xff" * 160).decode(), track="outbound"),
    _media(base64.b64encode(b"\x7f" * 161).decode()),  # an odd length of audio
    _media(base64.b64encode(b"\x00" * 48_000).decode()),  # 6 s in one frame
    _media(base64.b64encode(b"\xff" * 160).decode(), track=["inbound"]),
    '{"event": "start", "start": []}', '{"event": "mark", "mark": {"name": "\\u0000"}}',
    b"\x00\xff\xfe binary frame", json.dumps({"event": "media", "media": {"payload": BIG[0]}}),
    *(_media(value) for value in ODD[:20]),
]


def test_garbage_on_a_live_stream_is_ignored_and_keys_still_answer(transport, api, crashes):
    call = _call(transport, api)
    stream = list(call.streams.values())[-1]
    for raw in GARBAGE:
        stream.ws.send(raw)
    stream.ws.send(json.dumps({"event": "stop"}))
    with pytest.raises(ConnectionClosed):  # read everything before it (or died on it)
        for _ in range(6):
            stream.ws.receive(timeout=10)
    crashes.check()
    call.press("1")
    call.expect_heard("Reservations.")
    assert not api.redirects, "nothing was heard in the garbage"
    crashes.check()


START_ODD: list[Any] = [None, [], "x", 5, {"callSid": 5}, {"callSid": ["CA1"]},
                        {"callSid": "CA" + "0" * 32, "customParameters": ["node", "menu"]},
                        {"callSid": "CA" + "0" * 32, "customParameters": "node=menu"},
                        {"callSid": "CA" + "0" * 32, "customParameters": {"node": ["menu"],
                                                                          "turn": {"a": 1}}},
                        {"callSid": "\x00" * 10_000, "customParameters": {"node": "😀"}}]


def test_a_signed_stream_with_an_odd_start_is_closed_without_a_crash(transport, api, crashes):
    call = _call(transport, api)
    for start in [*START_ODD, {"callSid": call.call_sid, "customParameters": {
            "node": "menu", "turn": "999", "stream": "menu.999"}}]:
        ws = Client.connect(transport.websocket_url(STREAM_URL), headers={
            "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, STREAM_URL, {})})
        try:
            ws.send(json.dumps({"event": "connected"}))
            ws.send(json.dumps({"event": "start", "start": start}))
            with pytest.raises(ConnectionClosed):  # the server hangs up: nothing to hear
                ws.receive(timeout=5)
        finally:
            if ws.connected:
                ws.close()
        crashes.check()
    call.press("2")
    call.expect_heard("Refunds.")


RECORDING_URLS = [
    "", "not a url", "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/",
    "https://api.twilio.com", "https://api.twilio.com/", "https://api.twilio.com.evil.test/x",
    "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "0" * 32,
    "https://api.twilio.com/../../../etc/passwd", "https://api.twilio.com/\x00",
    "https://api.twilio.com/a b",
    "https://api.twilio.com/😀", "https://user:pw@api.twilio.com/x", "//api.twilio.com/x",
    "https://api.twilio.com/" + "a" * 100_000, *ODD[:24],
]


def test_a_recording_url_of_any_shape_is_fetched_only_from_twilio_or_not_at_all(
        transport, api, crashes):
    twilio = Twilio(transport.app)
    for url in RECORDING_URLS:
        sid = fz.new_call_sid()  # a new call each time, so each answer is heard at the menu
        twilio.post("/voice/incoming", fz.call_fields(sid, To=TO, CallStatus="ringing"))
        node, turn = fz.where(twilio, sid)
        assert node == "menu"
        answer = twilio.post("/voice/input", fz.call_fields(sid, To=TO, RecordingUrl=url),
                             {"node": node, "turn": turn})
        assert "잘 못 알아들었습니다" in answer.get_data(as_text=True) or \
            "다시 말씀해 주세요" in answer.get_data(as_text=True)  # nothing heard: asked again
        crashes.check()
    assert not api.redirects
    fz.assert_state_sound(transport.app, twilio.sids)
