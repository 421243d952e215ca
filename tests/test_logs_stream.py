"""Media-stream log lines name their call. The websocket handshake is a GET with no CallSid;
Twilio's `start` message names the call, and every line the stream writes after it (a
traceback included) carries that CallSid as an operator's log shipper reads it."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from simple_websocket import Client, ConnectionClosed

from ivr_server import create_app
from ivr_server.json_logs import make_handler
from ivr_server.simulator import RecordingsServer, SimulatedCall
from ivr_server.simulator.transport import InProcessTransport, twilio_signature
from speech.model import default_model_path

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .helpers import fresh_number
from .test_speech_stream import ACCOUNT_SID, STREAM_FLOW, TO

pytestmark = pytest.mark.slow
STREAM_URL = PUBLIC_URL.replace("https://", "wss://") + "/voice/stream"


@pytest.fixture
def rig(config, clock, flows_dir) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    """A streaming flow's app, Twilio's API for it, and the JSON lines logged meanwhile."""
    (flows_dir / "streamed.yaml").write_text(STREAM_FLOW)
    out, transports = io.StringIO(), []
    handler = make_handler("json", out)
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as api:
        cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                                   numbers={TO: "streamed"}, settings=config.flows.settings)
               .with_section("twilio", account_sid=ACCOUNT_SID, api_base_url=api.base_url)
               .with_section("speech", model_path=str(default_model_path())))
        app = create_app(cfg, clock=clock)

        def call() -> SimulatedCall:
            transport = InProcessTransport(app, PUBLIC_URL)
            transports.append(transport)
            placed = SimulatedCall(transport, AUTH_TOKEN, from_=fresh_number(), to=TO,
                                   account_sid=ACCOUNT_SID, recordings=api)
            placed.dial()
            assert placed.streams, "the streaming prompt opened a media stream"
            return placed

        yield {"app": app, "call": call, "out": out, "transports": transports}
    root.removeHandler(handler)
    root.setLevel(level)
    for transport in transports:
        transport.close()
    app.extensions["ivr"].redis.close()


def stream_lines(out: io.StringIO, wanted: str, within: float = 10.0) -> list[dict]:
    """The media stream's JSON lines, once one containing `wanted` has been written (the
    stream runs in the server's thread)."""
    deadline = time.monotonic() + within
    while True:
        lines = [json.loads(raw) for raw in out.getvalue().splitlines()]
        mine = [line for line in lines if line["logger"] == "ivr_server.media_stream"]
        if any(wanted in line["message"] for line in mine) or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


def test_a_stream_for_a_prompt_the_call_left_logs_that_calls_sid(rig):
    call = rig["call"]()
    call.press("3")  # the call moved on to the collect
    transport = InProcessTransport(rig["app"], PUBLIC_URL)
    rig["transports"].append(transport)
    ws = Client.connect(transport.websocket_url(STREAM_URL),
                        headers={"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, STREAM_URL,
                                                                        {})})
    ws.send(json.dumps({"event": "start", "start": {
        "callSid": call.call_sid, "customParameters": {"node": "menu", "turn": "1"}}}))
    with pytest.raises(ConnectionClosed):
        ws.receive(timeout=5)
    lines = stream_lines(rig["out"], "is not for the prompt")
    ignored = [line for line in lines if "is not for the prompt" in line["message"]]
    assert ignored and ignored[0]["call_sid"] == call.call_sid, lines


def test_a_stream_that_fails_after_start_logs_its_traceback_with_the_calls_sid(
        rig, monkeypatch):
    def broken(node: Any) -> Any:
        raise RuntimeError("grammar store unreachable")

    monkeypatch.setattr("ivr_server.media_stream.listening", broken)
    call = rig["call"]()
    lines = stream_lines(rig["out"], "media stream failed")
    failed = [line for line in lines if "media stream failed" in line["message"]]
    assert failed, lines
    assert failed[0]["level"] == "ERROR" and failed[0]["call_sid"] == call.call_sid
    assert "RuntimeError: grammar store unreachable" in failed[0]["exc_info"]
