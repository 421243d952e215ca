"""Callers answer menus by voice: Twilio records, we fetch, recognise offline, and route."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ivr_server import create_app
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport
from speech.model import default_model_path

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .helpers import call_events
from .speech import audio_fixtures

pytestmark = pytest.mark.slow
phone_audio = audio_fixtures.phone_audio
ACCOUNT_SID = "AC" + "5" * 32
SPOKEN_FLOW = """\
flow: spoken
language: ko-KR
human: "+15005550006"
start: menu
nodes:
  menu:
    type: menu
    prompt: 예약, 환불, 확인 중에서 말씀하시거나 번호를 누르세요.
    options:
      - { key: "1", label: reserve, say: [예약], goto: reserve }
      - { key: "2", label: refund, say: [환불], goto: refund }
      - { key: "3", label: confirm, say: [확인], goto: agent }
      - { key: "4", label: code, goto: code }
    retries: 1
    fallback: agent
  code:
    type: collect
    prompt: 번호를 말씀하세요.
    save_as: code
    min_digits: 2
    max_digits: 4
    next: thanks
    fallback: agent
  thanks: { type: say, text: "Code {{ code }}.", next: agent }
  reserve: { type: say, text: Reservations., next: agent }
  refund: { type: say, text: Refunds., next: agent }
  agent: { type: transfer, to: "+15005550006" }
"""


class RecordingServer:
    """Stands in for Twilio's REST API: serves the caller's recording, only with the
    account's credentials, as api.twilio.com does."""

    def __init__(self) -> None:
        self.next_audio: bytes = b""
        self.fetches: list[str] = []
        self.deleted: list[str] = []

    def __call__(self, environ, start_response):  # noqa: ANN001, ANN204 - WSGI
        request = Request(environ)
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return Response("unauthorized", 401)(environ, start_response)
        if request.method == "DELETE":
            self.deleted.append(request.path)
            return Response(b"", 204)(environ, start_response)
        self.fetches.append(request.path)
        return Response(self.next_audio, 200, mimetype="audio/x-wav")(environ, start_response)


@pytest.fixture
def recordings() -> Iterator[tuple[RecordingServer, str]]:
    server_app = RecordingServer()
    server = make_server("127.0.0.1", 0, server_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server_app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def spoken_app(config, clock, flows_dir, recordings):  # noqa: ANN001, ANN201
    (flows_dir / "spoken.yaml").write_text(SPOKEN_FLOW)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={"+15005550400": "spoken"},
                               settings=config.flows.settings)
           .with_section("twilio", account_sid=ACCOUNT_SID, api_base_url=recordings[1])
           .with_section("speech", model_path=str(default_model_path())))
    return create_app(cfg, clock=clock)


def spoken_call(app) -> SimulatedCall:  # noqa: ANN001
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to="+15005550400",
                         account_sid=ACCOUNT_SID)
    call.dial()
    call.silence()  # no key during the prompt: the answer is recorded
    assert call.waiting_for == "record"
    return call


def test_a_spoken_choice_routes_the_call_and_is_logged(spoken_app, recordings, phone_audio):
    server, _ = recordings
    server.next_audio = phone_audio.mulaw_wav("환불").read_bytes()
    call = spoken_call(spoken_app)
    call.record(seconds=1, finish_key="")
    call.expect_heard("Refunds.")
    assert server.fetches, "the recording was fetched from the (stand-in) Twilio API"
    speech = [e for e in call_events(spoken_app, call.call_sid) if e.kind == "speech"]
    assert speech[0].data["choice"] == "refund" and speech[0].data["text"] == "환불"
    assert speech[0].data["confidence"] >= 0.6
    for _ in range(100):  # deletion runs beside the webhook; poll, no timing assertion
        if server.deleted:
            break
        time.sleep(0.05)
    assert server.deleted == [server.fetches[0] + ".json"]  # the caller's voice is not kept


def call_at_collect(app) -> SimulatedCall:  # noqa: ANN001
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to="+15005550400",
                         account_sid=ACCOUNT_SID)
    call.dial()
    call.press("4")
    return call


def test_spoken_digits_fill_a_collect(spoken_app, recordings, phone_audio):
    server, _ = recordings
    call = call_at_collect(spoken_app)
    call.silence()  # no key within a few seconds of the prompt: the answer is recorded
    assert call.waiting_for == "record"
    server.next_audio = phone_audio.mulaw_wav("이 삼").read_bytes()
    call.record(seconds=2, finish_key="")
    call.expect_heard("Code 23.")
    speech = [e for e in call_events(spoken_app, call.call_sid) if e.kind == "speech"]
    assert speech[-1].data["digits"] == "23" and speech[-1].data["path"] == "record"


def test_keys_still_fill_a_collect_that_listens(spoken_app):
    call = call_at_collect(spoken_app)
    call.press("4122#")
    call.expect_heard("Code 4122.")


def test_a_key_still_works_where_speech_is_offered(spoken_app):
    call = SimulatedCall(InProcessTransport(spoken_app, PUBLIC_URL), AUTH_TOKEN,
                         to="+15005550400", account_sid=ACCOUNT_SID)
    call.dial()
    call.press("1")
    call.expect_heard("Reservations.")


def test_speech_outside_the_menu_is_a_no_match(spoken_app, recordings, phone_audio):
    server, _ = recordings
    server.next_audio = phone_audio.noise_pcm_wav(1.5, 0.1).read_bytes()
    call = spoken_call(spoken_app)
    call.record(seconds=2, finish_key="")
    assert call.waiting_for in ("input", "record")
    call.expect_not_heard("Refunds.")
    kinds = [e.kind for e in call_events(spoken_app, call.call_sid)]
    assert "speech" in kinds and ("no_match" in kinds or "no_input" in kinds)


def test_an_unreachable_recording_is_a_no_match_not_an_error(spoken_app, recordings):
    server, _ = recordings
    server.next_audio = b"this is not audio"
    call = spoken_call(spoken_app)
    call.record(seconds=1, finish_key="")
    call.expect_heard("중에서 말씀하시거나")  # asked again
    events = call_events(spoken_app, call.call_sid)
    assert any(e.kind == "no_match" for e in events)
    assert not any(e.kind == "error" for e in events)


def test_without_a_speech_model_menus_take_keys_only(config, clock, flows_dir):
    (flows_dir / "spoken.yaml").write_text(SPOKEN_FLOW)
    cfg = config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                              numbers={"+15005550400": "spoken"}, settings=config.flows.settings)
    app = create_app(cfg, clock=clock)
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to="+15005550400")
    call.dial()
    assert call.waiting_for == "input"
    call.silence()
    assert call.waiting_for == "input"  # reprompted with keys, never recorded


def test_ops_can_replay_a_recording_and_see_what_the_server_heard(phone_audio, tmp_path):
    import json

    from click.testing import CliRunner

    from ivr_server.cli import main

    from .conftest import ROOT

    recording = phone_audio.mulaw_wav("환불")
    result = CliRunner().invoke(main, [
        "--config", str(ROOT / "config.toml"), "speech", "recognize", str(recording),
        "--model", str(default_model_path()), "--choices", "예약|예매,환불|돈,확인"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["text"] == "환불" and line["choice"] == "환불" and line["digits"] is None
    assert line["confidence"] >= 0.6 and line["decode_ms"] > 0
    noise = phone_audio.noise_pcm_wav(1.5, 0.1)
    result = CliRunner().invoke(main, [
        "--config", str(ROOT / "config.toml"), "speech", "recognize", str(noise),
        "--model", str(default_model_path()), "--choices", "예약,환불,확인"])
    assert json.loads(result.output.strip().splitlines()[-1])["choice"] is None


def test_ops_can_replay_a_spoken_number(phone_audio):
    import json

    from click.testing import CliRunner

    from ivr_server.cli import main

    from .conftest import ROOT

    result = CliRunner().invoke(main, [
        "--config", str(ROOT / "config.toml"), "speech", "recognize",
        str(phone_audio.mulaw_wav("이 삼")), "--model", str(default_model_path()), "--digits"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["digits"] == "23" and line["choice"] is None and line["text"] == "이 삼"
