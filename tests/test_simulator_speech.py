"""The simulated caller speaks at a menu as Twilio delivers it: a <Record>, a RecordingUrl the
server fetches from (a stand-in for) Twilio's API, and the recording deleted afterwards."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
import requests

from ivr_server import create_app
from ivr_server.config import Config
from ivr_server.flowtest import run_flow_tests
from ivr_server.simulator import RecordingsServer, SimulatedCall, SimulatorError, synthesize
from ivr_server.simulator.script import read_step
from ivr_server.simulator.speaking import wav_seconds
from ivr_server.simulator.transport import InProcessTransport
from speech.model import default_model_path

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .test_speech_calls import SPOKEN_FLOW

ACCOUNT_SID = "AC" + "7" * 32
SPOKEN_TESTS = """\
flow: spoken
speech_model: {model}
tests:
  - name: a spoken refund reaches refunds
    steps:
      - hear: 말씀하시거나
      - say: 환불
      - hear: Refunds.
      - transferred_to: "+15005550006"
  - name: a key still works
    steps:
      - press: "1"
      - hear: Reservations.
  - name: a wrong expectation
    steps:
      - say: 확인
      - hear: Refunds.
"""


def mulaw_wav(seconds: float) -> bytes:
    """A silent 8 kHz mu-law WAV (header as sox writes it, with a fact chunk)."""
    data = b"\xff" * int(8000 * seconds)
    fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<II", 4, len(data)) + b"data" + struct.pack("<I", len(data))
            + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# -- fast: the stand-in API, WAV lengths, step syntax -------------------------------------------


def test_the_recordings_server_serves_only_with_the_account_credentials() -> None:
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        sid, url = server.add(b"RIFF-audio")
        assert url == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"
        local = server.base_url + url.removeprefix("https://api.twilio.com")
        assert requests.get(local, timeout=5).status_code == 401
        assert requests.get(local, auth=(ACCOUNT_SID, "wrong"), timeout=5).status_code == 401
        got = requests.get(local, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert got.status_code == 200 and got.content == b"RIFF-audio"
        assert requests.get(local + "x", auth=(ACCOUNT_SID, AUTH_TOKEN),
                            timeout=5).status_code == 404
        gone = requests.delete(local + ".json", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert gone.status_code == 204 and server.deleted == [sid] and server.wait_deleted(sid)
        assert requests.get(local, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).status_code == 404
    assert not server.started


def test_a_wav_length_is_read_from_its_header() -> None:
    assert wav_seconds(mulaw_wav(1.5)) == pytest.approx(1.5)
    with pytest.raises(SimulatorError, match="not a WAV"):
        wav_seconds(b"hello")


def test_say_audio_paths_are_relative_to_the_script(tmp_path: Path) -> None:
    (tmp_path / "answer.wav").write_bytes(mulaw_wav(1))
    step = read_step({"say_audio": "answer.wav"}, 7, tmp_path)
    assert step.value == str((tmp_path / "answer.wav").resolve()) and step.line == 7
    with pytest.raises(ValueError, match="no file"):
        read_step({"say_audio": "missing.wav"}, 8, tmp_path)
    assert read_step({"say": "환불"}).value == "환불"


def test_say_without_a_speech_model_fails_at_its_line(config: Config, tmp_path: Path) -> None:
    folder = tmp_path / "spoken"
    folder.mkdir()
    (folder / "spoken.yaml").write_text(SPOKEN_FLOW)
    text = SPOKEN_TESTS.replace("speech_model: {model}", "# no speech_model")  # same lines
    (folder / "spoken.test.yaml").write_text(text)
    out = io.StringIO()
    failures = run_flow_tests([str(folder)], config.with_section("speech", model_path=""),
                              out=out)
    report = out.getvalue()
    assert failures == 2, report  # the two tests that speak; the key still works
    assert "spoken.test.yaml:7: test 'a spoken refund reaches refunds': say needs a speech " \
           "model" in report
    assert "spoken.test.yaml:16:" in report and report.strip().endswith("1 passed, 2 failed")


def test_say_at_a_keys_only_menu_says_why_it_cannot(app) -> None:  # noqa: ANN001
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN)
    call.dial()
    with pytest.raises(SimulatorError, match="takes keys only and records no answer"):
        call.say(mulaw_wav(1))


# -- slow: synthesized speech and the real Korean model -------------------------------------


@pytest.mark.slow
def test_a_flow_test_answers_a_menu_by_voice(config: Config, tmp_path: Path) -> None:
    folder = tmp_path / "spoken"
    folder.mkdir()
    (folder / "spoken.yaml").write_text(SPOKEN_FLOW)
    (folder / "spoken.test.yaml").write_text(SPOKEN_TESTS.format(model=default_model_path()))
    out = io.StringIO()
    failures = run_flow_tests([str(folder)], config, out=out)
    report = out.getvalue()
    assert failures == 1, report
    assert "spoken.test.yaml:17: test 'a wrong expectation': expected to hear 'Refunds.'" \
        in report
    assert "speak    확인 [recording" in report  # the transcript shows the spoken answer
    assert report.strip().endswith("2 passed, 1 failed")


@pytest.mark.slow
def test_a_flow_test_answers_a_streaming_menu_by_voice(config: Config, tmp_path: Path) -> None:
    folder = tmp_path / "streamed"
    folder.mkdir()
    (folder / "spoken.yaml").write_text("speech: stream\n" + SPOKEN_FLOW)
    (folder / "spoken.test.yaml").write_text(SPOKEN_TESTS.format(model=default_model_path()))
    out = io.StringIO()
    failures = run_flow_tests([str(folder)], config, out=out)
    report = out.getvalue()
    assert failures == 1, report
    assert "speak    확인 [streamed" in report  # over the media stream, not recorded
    assert report.strip().endswith("2 passed, 1 failed")


@pytest.fixture
def spoken_server(config: Config, flows_dir: Path, clock):  # noqa: ANN001, ANN201
    (flows_dir / "spoken.yaml").write_text(SPOKEN_FLOW)
    with RecordingsServer(ACCOUNT_SID, AUTH_TOKEN) as recordings:
        cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                                   numbers={"+15005550400": "spoken"},
                                   settings=config.flows.settings)
               .with_section("twilio", account_sid=ACCOUNT_SID,
                             api_base_url=recordings.base_url)
               .with_section("speech", model_path=str(default_model_path())))
        yield create_app(cfg, clock=clock), recordings


@pytest.mark.slow
def test_a_caller_says_a_recording_and_it_is_deleted_afterwards(spoken_server) -> None:  # noqa: ANN001
    app, recordings = spoken_server
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to="+15005550400",
                         account_sid=ACCOUNT_SID, recordings=recordings)
    call.dial()
    assert call.waiting_for == "input"  # the keys-only prompt: say() lets it time out first
    heard = call.say(synthesize("환불", "ko"))
    assert "Refunds." in heard
    sid = call.last_recording_sid
    assert sid and recordings.fetched == [sid]
    assert recordings.wait_deleted(sid), "the server deletes the caller's voice"
    posted = [r for r in call.requests if "/voice/input" in r[1]]
    assert posted and posted[0][2] == 200


@pytest.mark.slow
def test_say_accepts_a_wav_file_and_text_in_a_voice(spoken_server, tmp_path: Path) -> None:  # noqa: ANN001
    app, recordings = spoken_server
    wav = tmp_path / "reserve.wav"
    wav.write_bytes(synthesize("예약", "ko"))
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, to="+15005550400",
                         account_sid=ACCOUNT_SID, recordings=recordings)
    call.dial()
    call.silence()
    assert call.waiting_for == "record"
    call.say(wav)
    call.expect_heard("Reservations.")
    assert recordings.started  # given to the call: the call does not stop it


@pytest.mark.slow
@pytest.mark.parametrize("speech", ["record", "stream"])
def test_ivr_call_script_speaks_to_a_running_server(config: Config, flows_dir: Path,
                                                    tmp_path: Path, clock,  # noqa: ANN001
                                                    speech: str) -> None:
    import socket
    import threading

    from click.testing import CliRunner
    from werkzeug.serving import make_server

    from ivr_server.cli_call import call_command

    with socket.socket() as probe:  # a port for the recordings API, known before the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (flows_dir / "spoken.yaml").write_text(f"speech: {speech}\n" + SPOKEN_FLOW)
    cfg = (config.with_section("flows", directory=str(flows_dir), reload_interval=0.0,
                               numbers={"+15005550400": "spoken"}, settings=config.flows.settings)
           .with_section("twilio", account_sid=ACCOUNT_SID,
                         api_base_url=f"http://127.0.0.1:{port}")
           .with_section("speech", model_path=str(default_model_path())))
    server = make_server("127.0.0.1", 0, create_app(cfg, clock=clock), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        (tmp_path / "answer.wav").write_bytes(synthesize("환불", "ko"))
        script = tmp_path / "steps.yaml"
        script.write_text("- say_audio: answer.wav\n- hear: Refunds.\n")
        result = CliRunner().invoke(call_command, [
            "--url", url, "--public-url", PUBLIC_URL, "--to", "+15005550400",
            "--script", str(script), "--token", AUTH_TOKEN, "--account-sid", ACCOUNT_SID,
            "--recordings-port", str(port)], obj=cfg)
        assert result.exit_code == 0, result.output
        assert f"TWILIO_API_BASE_URL=http://127.0.0.1:{port}" in result.output
        assert ("[streamed" in result.output) == (speech == "stream"), result.output
    finally:
        server.shutdown()
