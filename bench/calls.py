"""Signed Twilio webhook requests for many concurrent calls, ordered the way Twilio sends them.

Why: a benchmark of unsigned or out-of-order requests measures the 403 or the safe path,
not the IVR. Every request is signed exactly as Twilio signs it (HMAC-SHA1 over the public
URL and the sorted POST parameters) and a call's next step is scheduled `lag` rounds after
its previous one, so it is answered long before the step that depends on it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

INCOMING, MAIN_MENU, ACCOUNT = 0, 1, 2
KINDS = ("incoming", "main_menu", "account_number")
ACCOUNT_SID = "AC" + "be7c" * 8
TO_NUMBER = "+15005550006"  # the demo's number; not listed in [flows.numbers]: default flow
API_VERSION = "2010-04-01"
PATHS = ("/voice/incoming", "/voice/input?node=main_menu&turn=1",
         "/voice/input?node=account_number&turn=2")

# What each step must answer, and the marks of the ways it can fail instead.
EXPECTED = {INCOMING: "gather_main_menu", MAIN_MENU: "gather_account", ACCOUNT: "dial_billing"}
MARKERS = (
    ("safe_path", "having trouble"),  # [fallback] message/goodbye: something failed
    ("gather_main_menu", '<Gather action="/voice/input?node=main_menu&amp;turn=1"'),
    ("gather_account", '<Gather action="/voice/input?node=account_number&amp;turn=2"'),
    ("dial_billing", '<Dial action="/voice/dial?node=billing_desk&amp;turn=3"'),
)
CATEGORIES = ("gather_main_menu", "gather_account", "dial_billing", "safe_path", "forbidden",
              "other_status", "other_body", "socket_error")


def luhn_number(prefix: str = "3141592") -> str:
    """An 8-digit account number that passes the demo flow's Luhn check."""
    for check in "0123456789":
        digits = prefix + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable: one check digit always fits")


ACCOUNT_NUMBER = luhn_number()


def classify(status: int, body: str) -> str:
    """Which answer a response is: the intended TwiML of some step, the safe path, or an error."""
    if status == 403:
        return "forbidden"
    if status == 0:
        return "socket_error"
    if status != 200:
        return "other_status"
    for name, mark in MARKERS:
        if mark in body:
            return name
    return "other_body"


@dataclass(frozen=True)
class Req:
    kind: int
    call: int  # index of the call within its batch
    path: str
    body: bytes
    signature: str

    def raw(self, host: str) -> str:
        """The request exactly as sent on the wire (wrk replays these bytes)."""
        return (f"POST {self.path} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(self.body)}\r\nX-Twilio-Signature: {self.signature}\r\n"
                f"User-Agent: TwilioProxy/1.1\r\n\r\n{self.body.decode()}")

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": self.signature, "User-Agent": "TwilioProxy/1.1"}


def call_sid(run_id: str, batch: str, i: int) -> str:
    """34 characters like a real CallSid; the run id prefix lets us find (and delete) our rows."""
    return f"CA{run_id}{batch}{i:0{32 - len(run_id) - len(batch)}d}"


def interleave(n_calls: int, lag: int) -> list[tuple[int, int]]:
    """(kind, call) in send order: round r sends incoming(r), step 1 of r-lag, step 2 of r-2lag."""
    order: list[tuple[int, int]] = []
    for r in range(n_calls + 2 * lag):
        for kind in (INCOMING, MAIN_MENU, ACCOUNT):
            call = r - kind * lag
            if 0 <= call < n_calls:
                order.append((kind, call))
    return order


class Signer:
    """Builds the signed requests of one batch of calls against one public base URL."""

    def __init__(self, token: str, base_url: str, run_id: str):
        self.validator = RequestValidator(token)
        self.base_url, self.run_id = base_url.rstrip("/"), run_id

    def params(self, kind: int, batch: str, call: int) -> dict[str, str]:
        p = {"AccountSid": ACCOUNT_SID, "ApiVersion": API_VERSION, "Direction": "inbound",
             "CallSid": call_sid(self.run_id, batch, call), "To": TO_NUMBER,
             # Distinct callers: each incoming counts that number's previous calls.
             "From": f"+1415{call % 10_000_000:07d}",
             "CallStatus": "ringing" if kind == INCOMING else "in-progress"}
        if kind == MAIN_MENU:
            p["Digits"] = "1"  # billing
        elif kind == ACCOUNT:
            p["Digits"] = ACCOUNT_NUMBER
        return p

    def request(self, kind: int, batch: str, call: int) -> Req:
        params = self.params(kind, batch, call)
        path = PATHS[kind]
        signature = self.validator.compute_signature(self.base_url + path, params)
        return Req(kind, call, path, urlencode(params).encode(), signature)

    def batch(self, batch: str, n_calls: int, lag: int) -> list[Req]:
        return [self.request(kind, batch, call) for kind, call in interleave(n_calls, lag)]


def _lua_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r") \
        .replace("\n", "\\n") + '"'


def write_lua_data(path: Path, reqs: list[Req], host: str, chunk: int = 2000) -> None:
    """A Lua file returning {requests=..., kinds=...}; chunks stay under LuaJIT's constant limit."""
    with path.open("w") as f:
        f.write("local R, K = {}, {}\n"
                "local function add(t, k) for i = 1, #t do R[#R + 1] = t[i]; "
                "K[#K + 1] = k:byte(i) - 48 end end\n")
        for start in range(0, len(reqs), chunk):
            part = reqs[start:start + chunk]
            body = ",\n".join(_lua_str(r.raw(host)) for r in part)
            kinds = "".join(str(r.kind) for r in part)
            f.write(f"add((function() return {{\n{body}\n}} end)(), \"{kinds}\")\n")
        f.write("return {requests = R, kinds = K}\n")
