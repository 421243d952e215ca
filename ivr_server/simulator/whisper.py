"""The agent's side of a transfer: the whisper TwiML Twilio runs on the agent's leg."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin

from . import twiml_reader as tw
from .model import SimulatorError, Transfer

if TYPE_CHECKING:
    from .caller import SimulatedCall


def whisper(call: SimulatedCall, dial: tw.Dial, target: tw.DialTarget, child: str,
            transfer: Transfer) -> bool:
    """Run the agent's leg TwiML (`url=` on the noun). False if the agent hung up.

    The agent presses nothing: a <Gather> in the whisper only contributes its prompts."""
    params = {"CallSid": child, "ParentCallSid": call.call_sid,
              "AccountSid": call.account_sid, "From": dial.caller_id or call.from_,
              "To": target.target, "Caller": dial.caller_id or call.from_,
              "Called": target.target, "CallStatus": "in-progress",
              "Direction": "outbound-dial", "ApiVersion": "2010-04-01"}
    method, url = target.method, call._abs(target.url or "")
    for _ in range(10):
        verbs = call._fetch(method, url, params, base=False)
        for verb in verbs:
            prompts = verb.prompts if isinstance(verb, tw.Gather) else (verb,)
            for p in prompts:
                if isinstance(p, tw.Say | tw.Play):
                    text = p.text if isinstance(p, tw.Say) else p.url
                    transfer.whisper.append(text)
                    call._note("agent", "hears", text)
            if isinstance(verb, tw.Hangup | tw.Reject):
                call._note("agent", "hangup", "declined during the whisper")
                return False
            if isinstance(verb, tw.Redirect):
                method, url = verb.method, urljoin(url, verb.url)
                break
        else:
            return True
    raise SimulatorError("the whisper redirected more than 10 times")
