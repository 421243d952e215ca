"""The REST client against Twilio's own contract (its OpenAPI description, served by Prism):
what the client sends must be what Twilio accepts, and what Twilio refuses must surface as a
TwilioRestError that says why."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests

from ivr_server.speech_input import SpeechInput
from ivr_server.twilio_rest import TwilioRest, TwilioRestError
from tests.prism import TwilioApiMock

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "test-auth-token-0123456789abcdef"
CALL = "CA" + "a1" * 16
RECORDING = "RE" + "b2" * 16
ACCOUNT_PATH = f"/2010-04-01/Accounts/{ACCOUNT}"


@pytest.fixture
def api(twilio_api: TwilioApiMock) -> TwilioApiMock:
    """The session's mock, its request log emptied for this test. Loopback only: a test
    must never reach the real Twilio."""
    assert urlsplit(twilio_api.base_url).hostname == "127.0.0.1"
    twilio_api.clear()
    return twilio_api


@pytest.fixture
def rest(api: TwilioApiMock) -> TwilioRest:
    return TwilioRest(ACCOUNT, TOKEN, api_base_url=api.base_url)


def test_redirecting_a_live_call_is_accepted_with_url_and_method(
        rest: TwilioRest, api: TwilioApiMock) -> None:
    rest.redirect_call(CALL, "https://ivr.example.test/voice/answer?step=2", method="POST")

    sent = api.last()
    assert (sent.method, urlsplit(sent.path).path) == ("POST", f"{ACCOUNT_PATH}/Calls/{CALL}.json")
    assert sent.status == 200, api.log_tail()
    assert sent.fields == {"Url": "https://ivr.example.test/voice/answer?step=2",
                           "Method": "POST"}
    assert sent.headers["Authorization"].startswith("Basic ")


def test_deleting_a_recording_is_accepted_with_204(rest: TwilioRest, api: TwilioApiMock) -> None:
    assert rest.delete_recording(RECORDING) is True

    sent = api.last()
    assert (sent.method, sent.path) == ("DELETE", f"{ACCOUNT_PATH}/Recordings/{RECORDING}.json")
    assert sent.status == 204, api.log_tail()


def test_sending_an_sms_is_accepted_and_returns_the_message_sid(
        rest: TwilioRest, api: TwilioApiMock) -> None:
    sid = rest.send_sms("+15005550006", "+15005550001", "Your callback is at 3 pm.",
                        status_callback="https://ivr.example.test/sms/status")

    sent = api.last()
    assert (sent.method, sent.path) == ("POST", f"{ACCOUNT_PATH}/Messages.json")
    assert sent.status == 201, api.log_tail()
    assert sent.fields == {"To": "+15005550006", "From": "+15005550001",
                           "Body": "Your callback is at 3 pm.",
                           "StatusCallback": "https://ivr.example.test/sms/status"}
    # Prism answers with the spec's example message, so only its shape is known.
    assert sid.startswith("SM") and len(sid) == 34


def test_an_sms_with_an_empty_body_is_refused_with_the_status_and_reason(
        rest: TwilioRest) -> None:
    with pytest.raises(TwilioRestError) as refused:
        rest.send_sms("+15005550006", "+15005550001", "")

    assert refused.value.status == 422
    assert "HTTP 422" in str(refused.value)
    assert "sending an SMS to +15005550006" in str(refused.value)
    assert "Body must NOT have fewer than 1 characters" in str(refused.value)


def test_a_malformed_call_sid_is_refused_naming_the_call(rest: TwilioRest) -> None:
    with pytest.raises(TwilioRestError, match=r"redirecting call CA123: HTTP 422") as refused:
        rest.redirect_call("CA123", "https://ivr.example.test/voice/answer")
    assert "sid" in str(refused.value)


def test_the_contract_refuses_what_twilio_refuses(api: TwilioApiMock) -> None:
    """The mock itself is strict: no credentials, an empty message, a misspelt field, an
    update to a call with a field Twilio does not know."""
    auth = (ACCOUNT, TOKEN)
    messages = f"{api.base_url}{ACCOUNT_PATH}/Messages.json"
    call = f"{api.base_url}{ACCOUNT_PATH}/Calls/{CALL}.json"
    message = {"To": "+15005550006", "From": "+15005550001", "Body": "hi"}
    assert requests.post(messages, data=message, timeout=10).status_code == 401
    assert requests.post(messages, data={}, auth=auth, timeout=10).status_code == 422
    assert requests.post(messages, data={**message, "Bodyy": "x"}, auth=auth,
                         timeout=10).status_code == 422
    assert requests.post(call, data={"Url": "https://x.test/", "Methd": "POST"}, auth=auth,
                         timeout=10).status_code == 422
    assert requests.post(messages, data=message, auth=auth, timeout=10).status_code == 201


@pytest.mark.parametrize("suffix", ["", ".wav"])
def test_speech_input_deleting_a_heard_recording_is_accepted(
        api: TwilioApiMock, suffix: str) -> None:
    """SpeechInput deletes each answer's recording itself (not through TwilioRest): the
    request it sends for a webhook's RecordingUrl must be one Twilio accepts."""
    speech = SpeechInput(None, account_sid=ACCOUNT, auth_token=TOKEN,  # type: ignore[arg-type]
                         api_base_url=api.base_url)
    try:
        speech._delete(f"https://api.twilio.com{ACCOUNT_PATH}/Recordings/{RECORDING}{suffix}")
    finally:
        speech._deleter.shutdown()

    sent = api.last()
    assert (sent.method, sent.path) == ("DELETE", f"{ACCOUNT_PATH}/Recordings/{RECORDING}.json")
    assert sent.status == 204, api.log_tail()


class _Answer(BaseHTTPRequestHandler):
    """Twilio's real 404 for a recording that is already gone."""

    def do_DELETE(self) -> None:
        body = (b'{"code": 20404, "message": "The requested resource was not found", '
                b'"more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}')
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def gone() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_deleting_a_recording_that_is_already_gone_counts_as_deleted(gone: str) -> None:
    assert TwilioRest(ACCOUNT, TOKEN, api_base_url=gone).delete_recording(RECORDING) is True


def test_twilio_out_of_reach_is_an_error_naming_the_recording() -> None:
    rest = TwilioRest(ACCOUNT, TOKEN, api_base_url=nothing_listening(), timeout=2)
    with pytest.raises(TwilioRestError, match=f"deleting recording {RECORDING}") as failed:
        rest.delete_recording(RECORDING)
    assert failed.value.status is None


def test_missing_credentials_are_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID"):
        TwilioRest("", TOKEN)


def nothing_listening() -> str:
    """A loopback base URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"
