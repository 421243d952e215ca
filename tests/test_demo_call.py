"""Whole calls through the demo flow, driven by the caller simulator."""

from __future__ import annotations


def test_first_time_caller_hears_generic_greeting_and_menu(place_call):
    call = place_call("+14155550100")
    call.expect_heard("Thanks for calling Acme.")
    call.expect_not_heard("Hello")
    call.expect_heard("For billing, press 1")


def test_known_caller_is_greeted_by_name(place_call, crm_stub):
    crm_stub.customers["+14155550123"] = {"first_name": "Ada", "tier": "gold"}
    call = place_call("+14155550123")
    call.expect_heard("Hello Ada, thanks for calling Acme.")
