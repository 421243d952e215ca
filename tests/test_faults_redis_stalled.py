"""Redis that stops answering without closing anything (a frozen server, a link dropping
packets): only the first command to find it waits its socket timeout; then Redis is left
alone for a pause, so callers get the safe path to a person at once instead of after a
minute of timeouts (Twilio gives up after 15 s), and the call log goes straight to SQL.

The Redis is a real redis-server (test_faults_redis.RestartableRedis) behind a relay that
can stall the link (tests/tcp_stall.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ivr_server import create_app
from ivr_server.redis_conn import connect

from .helpers import answered, call_row
from .tcp_stall import stalling_relay
from .test_faults_redis import FLOWS_HUMAN, MENU, caller, redis_server

__all__ = ["redis_server"]


def in_time(turn: Callable[[], Any]) -> Any:
    return answered(turn, within=120, hung="the webhook never answered")


def app_behind(config, clock, relay, pause: float):  # noqa: ANN001, ANN201
    cfg = config.with_section("redis", url=relay.url, key_prefix=config.redis.key_prefix)
    return create_app(cfg, clock=clock, redis_client=connect(relay.url, pause=pause))


def test_when_redis_stops_answering_later_callers_reach_a_person_without_waiting_on_it(
        config, clock, redis_server):
    with stalling_relay(redis_server.port) as relay:
        app = app_behind(config, clock, relay, pause=600)
        first = caller(app, "+14155550161")
        first.dial()
        first.expect_heard(MENU)

        relay.stall()
        in_time(lambda: first.press("1"))  # this turn finds Redis silent and waits it out
        first.expect_heard("having trouble right now. Connecting you")
        assert first.transferred_to.target == FLOWS_HUMAN

        relay.held_bytes = 0
        later = [caller(app, f"+1415555017{i}") for i in range(3)]
        for call in later:
            in_time(call.dial)
            call.expect_heard("having trouble right now. Connecting you")
            assert call.transferred_to.target == FLOWS_HUMAN
        assert relay.held_bytes == 0, "a caller's webhook still asked the silent Redis"
        for call in later:  # logged all the same, straight to SQL
            assert call_row(app, call.call_sid) is not None


def test_once_redis_answers_again_callers_get_the_menu(config, clock, redis_server):
    with stalling_relay(redis_server.port) as relay:
        app = app_behind(config, clock, relay, pause=0.3)
        relay.stall()
        stranded = caller(app, "+14155550181")
        in_time(stranded.dial)
        stranded.expect_heard("having trouble right now. Connecting you")

        relay.resume()
        time.sleep(0.5)  # past the pause: the next command asks Redis again
        back = caller(app, "+14155550182")
        back.dial()
        back.expect_heard(MENU)
