"""Which numbers an operator's log hides: a caller's number in any common written form
(E.164, national, grouped, a bare From value) keeps only its last four digits (and its
country code after a +); CallSids, times, durations, ports, addresses and ids stay as
they are, or the log would be no use for anything else."""

from __future__ import annotations

import io
import json
import logging

import pytest

from ivr_server.json_logs import make_handler, mask_numbers


@pytest.mark.parametrize(("line", "shown"), [
    ("From=%2B14155550100&To=%2B15005550006", "From=%2B1******0100&To=%2B1******0006"),
    ("From=4155550100&CallStatus=ringing", "From=******0100&CallStatus=ringing"),
    ("Caller=14155550100", "Caller=*******0100"),
    ("{'From': '4155550100', 'To': '2125550123'}", "{'From': '******0100', 'To': '******0123'}"),
    ('{"to_number": "4155550100"}', '{"to_number": "******0100"}'),
    ("callback to (415) 555-0100 failed", "callback to (***) ***-0100 failed"),
    ("callback to (415)555-0100", "callback to (***)***-0100"),
    ("caller 415-555-0100 hung up", "caller ***-***-0100 hung up"),
    ("caller 415.555.0100.", "caller ***.***.0100."),
    ("caller 415 555 0100", "caller *** *** 0100"),
    ("dialling 1-415-555-0100", "dialling *-***-***-0100"),
    ("local 555-0100 only", "local ***-0100 only"),
    ("dial +1 (415) 555-0100", "dial +1 (***) ***-0100"),
    ("dial +1 415-555-0100", "dial +1 ***-***-0100"),
    ("London +44 20 7123 4567", "London +44 ** **** 4567"),
    ("office 020 7123 4567", "office *** **** 4567"),
])
def test_a_callers_number_in_any_usual_form_keeps_only_its_last_four_digits(line, shown):
    assert mask_numbers(line) == shown


@pytest.mark.parametrize("line", [
    "call CA4155550100a1b2c3d4e5f6a7b8c9d0e1f2 ended",  # a CallSid
    "sid=CA41555501004155550100415555010041",
    "at 2026-11-24T15:00:00.123Z and 2026-11-24 15:00:00,123",  # times and dates
    "dates 11-24-2026 and 2026/11/24",
    "epoch 1732460400 (ms 1732460400123)",  # a bare long number is not a phone's shape
    "took 0:00:00.169356s, 1234567 ms, 12345.678 s",  # durations
    "redis://127.0.0.1:6379/0 and [::1]:8080, 10.20.30.40",  # addresses and ports
    "ports 8000-9000 and 100-2000",  # ranges
    "job 123e4567-e89b-12d3-a456-426614174000",  # ids
    "pid 4155550, queue size 1234567",
    "CallDuration=4155550100",  # a number, but not a phone's parameter
    "version 3.11.2, order 12345678901 and +1234",
])
def test_sids_times_durations_ports_and_ids_are_left_as_they_are(line):
    assert mask_numbers(line) == line


def test_a_national_number_is_masked_in_the_json_line_and_its_traceback():
    out = io.StringIO()
    logger = logging.getLogger("ivr_server.test_masking")
    handler = make_handler("json", out)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("CRM has no customer (415) 555-0142")
        except ValueError:
            logger.exception("lookup for From=4155550142 failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    line = json.loads(out.getvalue())
    assert line["message"] == "lookup for From=******0142 failed"
    assert "no customer (***) ***-0142" in line["exc_info"]
    assert "555-0142" not in out.getvalue() and "4155550142" not in out.getvalue()
