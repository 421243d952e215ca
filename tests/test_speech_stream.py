"""Path 2: the caller's live audio streams to our websocket while the prompt plays; a spoken
answer redirects the live call (barge-in), keys still work, and noise changes nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from simple_websocket import Client, ConnectionClosed
from simple_websocket import ConnectionError as HandshakeRefused

from ivr_server import create_app
from ivr_server.simulator import RecordingsServer, SimulatedCall
from ivr_server.simulator.media import to_mulaw_8k
from ivr_server.simulator.transport import InProcessTransport, twilio_signature
from speech.model import default_model_path

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .helpers import call_events
from .speech import audio_fixtures

pytestmark = pytest.mark.slow
phone_audio = audio_fixtures.phone_audio
ACCOUNT_SID = "AC" + "7" * 32
TO = "+15005550401"
STREAM_FLOW = """\
flow: streamed
language: ko-KR
human: "+15005550006"
speech: stream
start: menu
nodes:
  menu:
    type: menu
    prompt: 예약, 환불, 확인 중에서 말씀하시거나 번호를 누르세요.
    options:
      - { key: "1", label: reserve, say: [예약], goto: reserve }
      - { key: "2", label: refund, say: [환불], goto: refund }
      - { key: "3", label: confirm, say: [확인], goto: account }
    no_input: 다시 말씀해 주세요.
    no_match: 잘 못 알아들었습니다.
    retries: 2
    fallback: agent
  reserve: { type: say, text: Reservations., next: agent }
  refund: { type: say, text: Refunds., next: agent }
  account:
    type: collect
    prompt: 번호를 말씀하세요.
    save_as: code
    min_digits: 2
    max_digits: 2
    next: thanks
    fallback: agent
  thanks: { type: say, text: "Code {{ code }}.", next: agent }
  agent: { type: transfer, to: "+15005550006" }
"""


@pytest.fixture
def twilio_api() -> Iterator[RecordingsServer]:
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


def _app(config, clock, flows_dir, api_base_url: str):  # noqa: ANN001, ANN202
    (flows_dir / "streamed.yaml").write_text(STREAM_FLOW)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={TO: "streamed"}, settings=config.flows.settings)
           .with_section("twilio", account_sid=ACCOUNT_SID, api_base_url=api_base_url)
           .with_section("speech", model_path=str(default_model_path())))
    return create_app(cfg, clock=clock)


@pytest.fixture
def stream_app(config, clock, flows_dir, twilio_api):  # noqa: ANN001, ANN201
    return _app(config, clock, flows_dir, twilio_api.base_url)


@pytest.fixture
def transports() -> Iterator[list[InProcessTransport]]:
    made: list[InProcessTransport] = []
    yield made
    for transport in made:
        transport.close()


def _call(app, api: RecordingsServer, transports: list) -> SimulatedCall:  # noqa: ANN001
    transport = InProcessTransport(app, PUBLIC_URL)
    transports.append(transport)
    call = SimulatedCall(transport, AUTH_TOKEN, to=TO, account_sid=ACCOUNT_SID,
                         recordings=api)
    call.dial()
    assert call.streams, "the streaming prompt opened a media stream"
    return call


def test_a_spoken_choice_cuts_the_prompt_short_and_routes_the_call(
        stream_app, twilio_api, transports, phone_audio):
    call = _call(stream_app, twilio_api, transports)
    call.say(phone_audio.mulaw_wav("환불"))
    call.expect_heard("Refunds.")
    assert any(m.kind == "redirect" for m in call.transcript), "redirected through the API"
    events = call_events(stream_app, call.call_sid)
    speech = next(e for e in events if e.kind == "speech")
    assert speech.data["path"] == "stream" and speech.data["choice"] == "refund"
    assert speech.data["text"] == "환불" and speech.data["confidence"] >= 0.6
    redirect = next(e for e in events if e.kind == "speech_redirect")
    assert redirect.data["endpoint_ms"] >= 0 and "error" not in redirect.data
    assert not call.streams, "the next answer stopped the prompt's stream"


def test_an_answer_still_being_spoken_when_the_prompt_times_out_is_heard(
        stream_app, twilio_api, transports, phone_audio):
    call = _call(stream_app, twilio_api, transports)
    stream = list(call.streams.values())[-1]
    turn = dict(stream.verb.params)["turn"]
    answers = stream_app.extensions["ivr"].streams
    # The answer and a breath of silence: the recogniser has the words but no pause yet.
    stream.send_audio(to_mulaw_8k(phone_audio.mulaw_wav("환불").read_bytes()))
    stream.send_silence(0.3)
    for _ in range(100):  # the server notices the caller talking (polled, not timed)
        if answers.speaking(call.call_sid, turn):
            break
        time.sleep(0.05)
    assert answers.speaking(call.call_sid, turn)
    # The line keeps carrying audio while Twilio posts the Gather's timeout, as on a call.
    line = threading.Timer(0.3, stream.send_silence, args=(1.5,))
    line.start()
    call.silence()
    line.join()
    call.expect_heard("Refunds.")
    call.expect_not_heard("다시 말씀해 주세요.")


def test_keys_still_answer_a_streaming_prompt(stream_app, twilio_api, transports):
    call = _call(stream_app, twilio_api, transports)
    call.press("1")
    call.expect_heard("Reservations.")
    assert not call.streams
    assert not twilio_api.redirects, "nothing heard, so nothing redirected"


def test_noise_on_the_line_changes_nothing_until_the_prompt_times_out(
        stream_app, twilio_api, transports, phone_audio):
    call = _call(stream_app, twilio_api, transports)
    call.say(phone_audio.noise_pcm_wav(2.0, 0.05))
    call.expect_not_heard("Refunds.")
    assert call.heard_since_input[0] in ("다시 말씀해 주세요.", "잘 못 알아들었습니다.")
    assert call.streams, "asked again, with a new stream for the new prompt"
    call.press("2")
    call.expect_heard("Refunds.")


def test_spoken_digits_fill_a_streaming_collect(stream_app, twilio_api, transports,
                                                phone_audio):
    call = _call(stream_app, twilio_api, transports)
    call.press("3")
    assert call.streams and call.waiting_for == "input"
    call.say(phone_audio.mulaw_wav("이 삼"))
    call.expect_heard("Code 23.")


def test_without_the_rest_api_a_spoken_answer_is_taken_when_the_prompt_times_out(
        config, clock, flows_dir, transports, phone_audio):
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as unreachable:
        dead_url = unreachable.base_url
    app = _app(config, clock, flows_dir, dead_url)  # the REST API refuses connections
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as api:
        call = _call(app, api, transports)
        call.say(phone_audio.mulaw_wav("환불"))
    call.expect_heard("Refunds.")  # after the Gather's timeout, not by a redirect
    redirect = next(e for e in call_events(app, call.call_sid) if e.kind == "speech_redirect")
    assert "error" in redirect.data


def _handshake(app, transports, signature: str | None):  # noqa: ANN001, ANN202
    transport = InProcessTransport(app, PUBLIC_URL)
    transports.append(transport)
    url = PUBLIC_URL.replace("https://", "wss://") + "/voice/stream"
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    return Client.connect(transport.websocket_url(url), headers=headers)


def test_an_unsigned_or_forged_media_stream_is_refused(stream_app, transports):
    for signature in (None, twilio_signature("wrong-token", "wss://x/voice/stream", {})):
        with pytest.raises(HandshakeRefused) as refused:
            _handshake(stream_app, transports, signature)
        assert refused.value.status_code == 403


def test_a_stream_for_a_prompt_the_call_has_left_is_ignored(stream_app, twilio_api,
                                                            transports, phone_audio):
    call = _call(stream_app, twilio_api, transports)
    call.press("3")  # the call moved on to the collect
    url = PUBLIC_URL.replace("https://", "wss://") + "/voice/stream"
    ws = _handshake(stream_app, transports, twilio_signature(AUTH_TOKEN, url, {}))
    ws.send(json.dumps({"event": "start", "start": {
        "callSid": call.call_sid, "customParameters": {"node": "menu", "turn": "1"}}}))
    with pytest.raises(ConnectionClosed):  # the server hangs up: nothing to hear there
        ws.receive(timeout=5)
    assert not twilio_api.redirects
