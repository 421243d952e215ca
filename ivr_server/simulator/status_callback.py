"""Twilio's call status callbacks for a simulated call, signed like every other request.

A call's `status_path` is where they go: a path under the server (`/voice/status`, a query
string allowed) or an absolute URL (a REST API call's StatusCallback), asked with
`status_method`. Each carries CallStatus, the call's usual parameters, a Timestamp and a
SequenceNumber counting the call's callbacks from 0. An answer other than 2xx is an error.
"""

from __future__ import annotations

import email.utils
from typing import TYPE_CHECKING

from .model import SimulatorError

if TYPE_CHECKING:
    from .caller import SimulatedCall


def callback_url(call: SimulatedCall) -> str | None:
    """The full URL status callbacks go to (None: the call has none)."""
    where = call.status_path
    if where is None:
        return None
    return where if "://" in where else call.transport.base_url + where


def post(call: SimulatedCall, status: str, extra: dict[str, str] | None = None) -> None:
    """Tell the status callback that the call is now `status`."""
    url = callback_url(call)
    if url is None:
        return
    result = call._request(call.status_method, url, {
        "CallStatus": status, **(extra or {}),
        "Timestamp": email.utils.formatdate(usegmt=True),
        "CallbackSource": "call-progress-events", "SequenceNumber": str(call.status_sequence)})
    call.status_sequence += 1
    if not 200 <= result.status < 300:
        raise SimulatorError(f"the status callback answered HTTP {result.status}: "
                             f"{result.body[:300]!r}")
