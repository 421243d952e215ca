"""Log lines as an operator's log shipper gets them: JSON (or text) tagged with the call
being handled, and never a caller's full number, whether it is in the message, its URL
encoding or a traceback."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest

from ivr_server import create_app
from ivr_server.config import ConfigError, load_config
from ivr_server.json_logs import make_handler, mask_numbers, setup_logging
from ivr_server.simulator import new_sid

from .conftest import PUBLIC_URL, call_params, sign


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """capture(fmt) -> the StringIO a handler of that format on the root logger writes to."""
    caplog.set_level(logging.INFO)
    root, added = logging.getLogger(), []

    def capture(fmt: str = "json") -> io.StringIO:
        stream = io.StringIO()
        handler = make_handler(fmt, stream)
        root.addHandler(handler)
        added.append(handler)
        return stream

    yield capture
    for handler in added:
        root.removeHandler(handler)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def unique_invalid_number() -> str:
    """A number nobody can text (area code 999), new each run: the database outlives us."""
    return f"+1999{random.randrange(10**7):07d}"


def test_json_lines_carry_the_call_sid_and_never_the_full_caller_number(config, clock,
                                                                         captured):
    app = create_app(config.with_section("sms", from_number="+15005550006"), clock=clock)
    client = app.test_client()

    def signed(path: str, params: dict[str, str]) -> Any:
        return client.post(path, data=params, base_url=PUBLIC_URL,
                           headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, params)})

    number, sid = unique_invalid_number(), new_sid("CA")
    out = captured("json")
    assert signed("/voice/incoming", call_params(sid, From=number)).status_code == 200
    # A completed call long enough for a survey text, which this number cannot take.
    assert signed("/voice/status", call_params(sid, From=number, CallStatus="completed",
                                               CallDuration="60")).status_code == 200
    lines = json_lines(out)
    assert lines and all({"ts", "level", "logger", "message", "call_sid"} <= set(line)
                         for line in lines)
    # Every line the app wrote for these webhooks names the call (the CRM stub's werkzeug
    # lines are another server's, about no call of its own).
    ours = [line for line in lines if line["logger"].startswith("ivr_server")]
    assert ours and [line["call_sid"] for line in ours] == [sid] * len(ours), ours
    refused = [line for line in lines if "not sent" in line["message"]]
    assert refused, [line["message"] for line in lines]
    assert refused[0]["call_sid"] == sid
    assert refused[0]["logger"] == "ivr_server.sms" and refused[0]["level"] == "INFO"
    assert f"+1******{number[-4:]}" in refused[0]["message"]
    # Nowhere, not even the CRM lookup's URL (%2B1999...) logged by its server.
    assert number[1:] not in out.getvalue()
    app.extensions["ivr"].redis.close()


def test_text_lines_name_the_call_they_were_written_for(post, captured):
    out = captured("text")
    sid = new_sid("CA")
    assert post("/voice/incoming", call_params(sid), signed=False).status_code == 403
    refused = [line for line in out.getvalue().splitlines() if "X-Twilio-Signature" in line]
    assert refused and f"ivr_server.voice [{sid}]: refused /voice/incoming" in refused[0]


def test_lines_outside_a_call_have_no_call_sid(app, captured):
    out = captured("json")
    app.test_client().get("/no/such/page")
    logging.getLogger("ivr_server.test").warning("between calls")
    line = json_lines(out)[-1]
    assert line["message"] == "between calls" and line["call_sid"] is None


def test_a_failing_webhook_is_one_json_line_with_its_call_and_traceback_masked(
        app, post, captured, monkeypatch):
    out = captured("json")
    number, sid = unique_invalid_number(), new_sid("CA")

    def broken(call_sid: str) -> Any:
        raise ValueError(f"session store refused {number} (From=415{number[-7:]})")

    monkeypatch.setattr(app.extensions["ivr"].sessions, "load", broken)
    assert post("/voice/incoming", call_params(sid, From=number)).status_code == 200
    failed = [line for line in json_lines(out) if line.get("exc_info")]
    assert len(failed) == 1, json_lines(out)
    line = failed[0]
    assert line["level"] == "ERROR" and line["call_sid"] == sid
    assert line["message"] == f"call {sid}: /voice/incoming failed; safe path"
    assert "Traceback" in line["exc_info"] and \
        f"ValueError: session store refused +1******{number[-4:]} " \
        f"(From=******{number[-4:]})" in line["exc_info"]
    assert number[2:] not in out.getvalue()


def test_numbers_keep_their_country_code_and_last_four_digits():
    assert mask_numbers("from +14155550100 to %2B442071234567") == \
        "from +1******0100 to %2B44******4567"
    assert mask_numbers("order 12345678901 and +1234") == "order 12345678901 and +1234"
    assert mask_numbers("+12345678901234567") == "+12345678901234567"  # too long for E.164


def test_log_format_and_level_come_from_the_environment(captured):
    config = load_config(env={"IVR_LOG_FORMAT": "json", "IVR_LOG_LEVEL": "warning"})
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = setup_logging(config.logging, stream)
    try:
        logging.getLogger("ivr_server.test").info("too chatty")
        logging.getLogger("ivr_server.test").warning("worth a line")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [line["message"] for line in json_lines(stream)] == ["worth a line"]


def test_an_unknown_log_format_is_refused_with_the_setting_named():
    config = load_config(env={"IVR_LOG_FORMAT": "yaml"})
    with pytest.raises(ConfigError, match=r"\[logging\] format 'yaml'"):
        setup_logging(config.logging, io.StringIO())
