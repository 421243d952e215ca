"""Twilio's REST API, for the few things the server asks of Twilio during a call.

Built on the official `twilio` package, so requests are shaped exactly as Twilio's own SDK
shapes them. Its one extension point is used: an HTTP client that sends every request to
the configured `api_base_url` (a stand-in such as the contract mock in the tests) instead
of https://api.twilio.com, and never anywhere else.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"
T = TypeVar("T")


class TwilioRestError(Exception):
    """Twilio refused a request, or could not be reached. `status` is the HTTP status (None
    when no answer came), `code` Twilio's error code (https://www.twilio.com/docs/errors)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code = status, code
        self.retry_after = retry_after  # seconds, from a 429/503's Retry-After header


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends what the SDK addresses to https://api.twilio.com to `api_base_url` instead.

    Refuses any other host (a region or edge set elsewhere must not route around the
    configured base URL), and ignores proxy environment variables, as the server's other
    requests to Twilio do."""

    def __init__(self, api_base_url: str, timeout: float):
        super().__init__(timeout=timeout)
        self.api_base_url = api_base_url
        if self.session is not None:
            self.session.trust_env = False
        self._refusal = threading.local()  # this thread's last error answer, for messages

    def refusal_text(self) -> str:
        return getattr(self._refusal, "text", "")

    def refusal_retry_after(self) -> float | None:
        return getattr(self._refusal, "retry_after", None)

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        if url.startswith(TWILIO_API + "/"):
            url = self.api_base_url + url[len(TWILIO_API):]
        elif not url.startswith(self.api_base_url + "/"):
            raise TwilioRestError(f"refusing {method} {url}: not on {self.api_base_url}")
        self._refusal.text, self._refusal.retry_after = "", None
        response = super().request(method, url, params=params, data=data, headers=headers,
                                   auth=auth, timeout=timeout, allow_redirects=allow_redirects)
        if response.status_code >= 400:
            self._refusal.text = response.text or ""
            self._refusal.retry_after = _seconds((response.headers or {}).get("Retry-After"))
        return response


class TwilioRest:
    """One account's REST client. Holds a connection pool: make one per app, not per call.

    Every method raises TwilioRestError when Twilio refuses or cannot be reached."""

    def __init__(self, account_sid: str, auth_token: str, api_base_url: str = TWILIO_API,
                 timeout: float = 5.0):
        if not account_sid or not auth_token:
            raise ValueError("Twilio's REST API needs an account SID and an auth token "
                             "(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.account_sid, self.timeout = account_sid, timeout
        self.api_base_url = api_base_url.rstrip("/")
        # environment={}: TWILIO_REGION / TWILIO_EDGE in the environment must not change
        # where requests go; the configured base URL alone decides.
        self._http = _BaseUrlHttpClient(self.api_base_url, timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http, environment={})

    def redirect_call(self, call_sid: str, url: str, method: str = "POST") -> None:
        """Move a live call to the TwiML at `url` now, e.g. once streaming recognition has
        heard the caller's answer and the menu's <Gather> need not run out."""
        self._do(f"redirecting call {call_sid}", lambda: self._client.calls(call_sid).update(
            url=url, method=method))

    def delete_recording(self, recording_sid: str) -> bool:
        """Delete a recording (privacy: a caller's voice is not kept once heard). True when
        it is gone, including when it was already gone (404)."""
        try:
            return bool(self._do(f"deleting recording {recording_sid}",
                                 lambda: self._client.recordings(recording_sid).delete()))
        except TwilioRestError as exc:
            if exc.status == 404:
                return True
            raise

    def send_sms(self, to: str, from_: str | None, body: str,
                 status_callback: str | None = None,
                 messaging_service_sid: str | None = None) -> str:
        """Send a text message from a number or a Messaging Service; returns its SID (SM...),
        the key of its status callbacks."""
        extra: dict[str, Any] = {"status_callback": status_callback} if status_callback else {}
        if messaging_service_sid:
            extra["messaging_service_sid"] = messaging_service_sid
        if from_:
            extra["from_"] = from_
        message = self._do(f"sending an SMS to {to}", lambda: self._client.messages.create(
            to=to, body=body, **extra))
        return str(message.sid)

    def list_messages(self, *, to: str, from_: str | None = None, limit: int = 50) -> list[Any]:
        """Twilio's newest messages to `to` (from `from_`), newest first: settles whether a
        send whose answer never came was taken (sms_settle)."""
        filters: dict[str, Any] = {"from_": from_} if from_ else {}
        return list(self._do(f"listing messages to {to[:6]}...", lambda: self._client.messages
                             .list(to=to, limit=limit, **filters)))

    def place_call(self, *, to: str, from_: str, url: str, status_callback: str,
                   timeout: int = 25, machine_detection: str | None = "DetectMessageEnd"
                   ) -> str:
        """Place an outbound call whose TwiML comes from `url`; returns its SID (CA...).
        Status callbacks report initiated (which names an attempt whose worker died before
        it could) and completed; ringing and answered would cost a webhook each and tell
        nothing the answer URL does not; with machine
        detection the answer URL learns whether a person or a machine picked up (after the
        beep with DetectMessageEnd, so a message left lands on the recording)."""
        extra: dict[str, Any] = {"machine_detection": machine_detection} \
            if machine_detection else {}
        call = self._do(f"calling {to[:6]}...", lambda: self._client.calls.create(
            to=to, from_=from_, url=url, method="POST", status_callback=status_callback,
            status_callback_method="POST",
            status_callback_event=["initiated", "completed"],
            timeout=timeout, **extra))
        return str(call.sid)

    def find_call(self, *, to: str, from_: str, since: datetime) -> tuple[str, str] | None:
        """(SID, status) of a call to `to` from `from_` created at or after `since`, if
        Twilio has one: settles whether an attempt whose answer never came was placed."""
        calls = self._do(f"listing calls to {to[:6]}...", lambda: self._client.calls.list(
            to=to, from_=from_, start_time_after=since - timedelta(minutes=1), limit=20))
        for call in calls:
            created = call.date_created
            if call.to == to and getattr(call, "_from", None) == from_ and created is not None \
                    and created >= since - timedelta(seconds=5):
                return str(call.sid), str(call.status)
        return None

    def call_status(self, call_sid: str) -> str:
        """A call's status now (queued, ringing, in-progress, completed, busy, ...)."""
        call = self._do(f"fetching call {call_sid}",
                        lambda: self._client.calls(call_sid).fetch())
        return str(call.status)

    def _do(self, what: str, request: Callable[[], T]) -> T:
        """Run one SDK request; turn whatever it raises into a TwilioRestError that says what
        was being done, the HTTP status and Twilio's error code."""
        try:
            return request()
        except TwilioRestError:
            raise
        except TwilioException as exc:
            status, code = getattr(exc, "status", None), getattr(exc, "code", None)
            reason = getattr(exc, "msg", None) or getattr(exc, "title", None) or str(exc)
            more = _why(self._http.refusal_text())
            code_text = f", Twilio error {code}" if code and code != status else ""
            raise TwilioRestError(
                f"Twilio refused {what}: HTTP {status}{code_text}: {reason}{more}",
                status=status, code=code, retry_after=self._http.refusal_retry_after()) from exc
        except requests.RequestException as exc:
            raise TwilioRestError(
                f"Twilio could not be reached ({what}): {type(exc).__name__}: {exc}") from exc


def _seconds(value: str | None) -> float | None:
    """A Retry-After given in seconds (the form Twilio uses); None for a date or garbage."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86400 else None


def _why(answer: str) -> str:
    """The reason in an error answer that the SDK's message leaves out: it quotes Twilio's
    `message`, but not an RFC 9457 problem's `detail` or a validator's list of failures."""
    try:
        payload = json.loads(answer)
    except ValueError:
        return f" ({answer[:200]})" if answer.strip() else ""
    if not isinstance(payload, dict) or "message" in payload:
        return ""
    notes = [v.get("message", "") for v in payload.get("validation") or []
             if isinstance(v, dict)]
    why = "; ".join(dict.fromkeys(n for n in notes if n)) or payload.get("detail") or ""
    return f" ({why[:500]})" if why else ""
