"""Settling a text whose send got no answer: did Twilio take it? (Sent at most once.)

A message left `sending` (a timeout, a worker killed mid-request) may or may not be at
Twilio. Before sending it again, the worker asks Twilio for messages to that number with
that body, and takes one only if it can be this record's own:

- created at or after this record's first attempt (Twilio's clock counts whole seconds,
  and may differ from ours by a moment: `CLOCK_SKEW`);
- not already the SID of another of our messages (the store checks and takes it in one
  transaction, so two workers settling texts to one number cannot both take it);
- the earliest such message: two identical texts to one number (two wait estimates in a
  day, a survey for each of two calls) are told apart by their order, so neither takes
  the other's and neither is suppressed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from .sms_store import SmsStore
from .twilio_rest import TwilioRest

log = logging.getLogger("ivr_server.sms_jobs")
CLOCK_SKEW = timedelta(seconds=1)
LISTED = 50  # the newest messages to the number looked at


def candidates(rest: TwilioRest, *, to: str, from_: str | None, body: str, since: datetime,
               messaging_service_sid: str | None = None) -> list[str]:
    """SIDs of Twilio's messages to `to` with this body created since `since`, earliest
    first. Raises TwilioRestError when Twilio cannot say."""
    listed = rest.list_messages(to=to, from_=from_, limit=LISTED)
    earliest = since.replace(microsecond=0) - CLOCK_SKEW
    found = []
    for newest_first, message in enumerate(listed):
        created = message.date_created
        if message.to == to and (message.body or "").startswith(body) \
                and created is not None and created >= earliest \
                and (not messaging_service_sid
                     or message.messaging_service_sid == messaging_service_sid):
            # Twilio lists newest first; within one second, its order is all there is.
            found.append((created, -newest_first, str(message.sid)))
    return [sid for _, _, sid in sorted(found)]


def settle(store: SmsStore, rest: TwilioRest, message_id: int, message: Any, *,
           from_: str | None, messaging_service_sid: str | None, at: datetime) -> str | None:
    """The SID of the message Twilio took for this record's earlier try, now recorded as
    sent; None when Twilio has none that can be this record's (send it again)."""
    found = candidates(rest, to=message.to_number, from_=from_, body=message.body,
                       since=message.updated_at, messaging_service_sid=messaging_service_sid)
    if not found:
        return None
    sid = store.claim_sent(message_id, found, at)
    if sid is None:
        log.info("sms %s: Twilio's %d matching messages are other texts of ours; sending it",
                 message_id, len(found))
    return sid
