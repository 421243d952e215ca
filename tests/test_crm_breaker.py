"""A CRM that keeps failing is skipped for a while, so callers stop waiting on it."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr_server import create_app
from ivr_server.lookup_breaker import CircuitBreaker
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport

from .conftest import AUTH_TOKEN, PUBLIC_URL
from .helpers import call_events

ADA = "+14155550123"


@pytest.fixture
def call_with(config, clock):  # noqa: ANN001, ANN201
    """call_with(**lookup settings) -> place(): a dialled call from Ada, on one app."""

    def make(**lookup: object):  # noqa: ANN202
        app = create_app(config.with_section("lookup", **lookup), clock=clock)

        def place() -> SimulatedCall:
            call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN, from_=ADA)
            call.dial()
            return call

        place.app = app  # type: ignore[attr-defined]
        return place

    return make


def test_a_crm_that_keeps_timing_out_is_skipped_and_callers_go_straight_to_the_menu(
        call_with, crm_stub):
    crm_stub.customers[ADA] = {"first_name": "Ada"}
    crm_stub.delay = 1.0
    place = call_with(max_timeout=0.2, breaker_failures=3, breaker_cooldown=30.0)
    for _ in range(3):
        place().expect_heard("Thanks for calling Acme.")
    assert len(crm_stub.requests) == 3
    later = [place() for _ in range(4)]
    for call in later:
        call.expect_not_heard("Ada")
        call.expect_heard("Thanks for calling Acme.")
        call.expect_heard("For billing, press 1")
    assert len(crm_stub.requests) == 3  # nobody waited on it again
    failed = [e for e in call_events(place.app, later[0].call_sid) if e.kind == "lookup_failed"]
    assert failed and "skipped" in failed[0].data["error"]
    assert failed[0].data["elapsed_ms"] == 0.0


def test_after_the_cooldown_one_call_tries_the_crm_and_lookups_resume_when_it_answers(
        call_with, crm_stub, clock):
    crm_stub.fail_with = 503
    place = call_with(breaker_failures=2, breaker_cooldown=30.0)
    place(), place()
    place().expect_not_heard("Ada")
    assert len(crm_stub.requests) == 2

    clock.advance(31)  # the CRM is still down: the trial fails and it is skipped again
    place().expect_heard("Thanks for calling Acme.")
    place().expect_heard("Thanks for calling Acme.")
    assert len(crm_stub.requests) == 3

    crm_stub.fail_with = None
    crm_stub.customers[ADA] = {"first_name": "Ada"}
    clock.advance(29)
    place().expect_not_heard("Ada")  # still within the cooldown the trial started
    assert len(crm_stub.requests) == 3
    clock.advance(2)
    place().expect_heard("Hello Ada, thanks for calling Acme.")
    place().expect_heard("Hello Ada, thanks for calling Acme.")
    assert len(crm_stub.requests) == 5


def test_a_crm_that_answers_not_found_is_up_and_is_always_asked(call_with, crm_stub):
    place = call_with(breaker_failures=2)
    for _ in range(4):
        place().expect_heard("Thanks for calling Acme.")  # Ada is unknown: a 404 each time
    assert len(crm_stub.requests) == 4


def test_a_crm_that_fails_now_and_then_is_still_asked_between_failures(call_with, crm_stub):
    place = call_with(breaker_failures=2)
    crm_stub.customers[ADA] = {"first_name": "Ada"}
    for _ in range(3):
        crm_stub.fail_with = 500
        place().expect_not_heard("Ada")
        crm_stub.fail_with = None
        place().expect_heard("Hello Ada")
    assert len(crm_stub.requests) == 6


def test_with_the_breaker_off_every_call_asks_the_crm(call_with, crm_stub):
    crm_stub.fail_with = 500
    place = call_with(breaker_failures=0)
    for _ in range(6):
        place().expect_heard("For billing, press 1")
    assert len(crm_stub.requests) == 6


def test_while_a_trial_lookup_is_out_the_other_callers_do_not_wait_on_it():
    now = [dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)]
    breaker = CircuitBreaker(failures=1, cooldown=10, clock=lambda: now[0])
    crm = "http://crm.example"
    breaker.record(crm, healthy=False)
    assert breaker.allow(crm) is not None
    now[0] += dt.timedelta(seconds=10)
    assert breaker.allow(crm) is None  # the trial
    assert "skipped" in (breaker.allow(crm) or "")  # a second caller meanwhile
    assert breaker.allow("http://other-crm.example") is None  # another CRM is its own
    breaker.record(crm, healthy=True)
    assert breaker.allow(crm) is None and breaker.allow(crm) is None
