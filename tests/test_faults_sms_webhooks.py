"""Texts that arrive while the database (or Redis too) is away: Twilio gets a 200 and does not
send them again, so the server keeps them and applies them, in order, once it can. A STOP
sent during an outage still opts the number out; a reply's answer goes out as a text."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest

from ivr_server import create_app
from ivr_server.simulator import SimulatedCall, new_sid
from ivr_server.simulator.transport import InProcessTransport
from ivr_server.simulator.twiml_reader import parse_twiml

from .conftest import AUTH_TOKEN, PUBLIC_URL, sign
from .helpers import fresh_number
from .test_faults_redis import DEAD_DATABASE, RestartableRedis
from .test_observability import scrape, value

COMPANY = "+15005550006"
MOBILE = phonenumbers.format_number(phonenumbers.example_number_for_type(
    "US", phonenumbers.PhoneNumberType.MOBILE), phonenumbers.PhoneNumberFormat.E164)


@pytest.fixture
def sms_config(config):  # noqa: ANN001, ANN201
    return config.with_section("sms", from_number=COMPANY, company="Acme")


def app_with(config, database: str | None = None, redis_url: str | None = None):  # noqa: ANN001, ANN201
    cfg = config
    if database is not None:
        cfg = cfg.with_section("database", url=database)
    if redis_url is not None:
        cfg = cfg.with_section("redis", url=redis_url, key_prefix=config.redis.key_prefix)
    return create_app(cfg)


def text_in(app, number: str, body: str):  # noqa: ANN001, ANN201
    params = {"MessageSid": new_sid("SM"), "AccountSid": "AC" + "1" * 32, "From": number,
              "To": COMPANY, "Body": body}
    return app.test_client().post(
        "/sms/incoming", data=params, base_url=PUBLIC_URL,
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms/incoming", params)})


def report(app, message_sid: str, status: str):  # noqa: ANN001, ANN201
    params = {"MessageSid": message_sid, "MessageStatus": status, "AccountSid": "AC" + "1" * 32}
    return app.test_client().post(
        "/sms/status", data=params, base_url=PUBLIC_URL,
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms/status", params)})


def answered_without_a_message(response) -> None:  # noqa: ANN001
    assert response.status_code == 200
    parse_twiml(response.get_data(as_text=True))  # valid TwiML Twilio can act on
    assert "<Message>" not in response.get_data(as_text=True)


def inbound_of(app, number: str) -> list:  # noqa: ANN001
    from sqlalchemy import select

    from ivr_server.models import SmsMessage

    with app.extensions["ivr"].session_factory() as db:
        return list(db.scalars(select(SmsMessage).where(SmsMessage.from_number == number)
                               .order_by(SmsMessage.id)))


def test_a_stop_texted_while_the_database_is_away_opts_the_number_out_once_it_is_back(
        sms_config):
    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE)

    answered_without_a_message(text_in(down, number, "STOP"))

    up = app_with(sms_config)  # the database is back (a process that reaches it)
    store = up.extensions["ivr"].sms_store
    assert not store.opted_out(number)
    assert up.extensions["ivr"].writer.run_chores() == 1
    assert store.opted_out(number)
    assert [(m.direction, m.body, m.status) for m in inbound_of(up, number)] == [
        ("inbound", "STOP", "received")]
    assert up.extensions["ivr"].writer.run_chores() == 0  # handled once, not again


def test_metrics_show_what_waits_for_the_database_and_see_it_drain(sms_config):
    down = app_with(sms_config, database=DEAD_DATABASE)
    text_in(down, fresh_number(MOBILE[2:5]), "STOP")
    text_in(down, fresh_number(MOBILE[2:5]), "HELP")
    call = SimulatedCall(InProcessTransport(down, PUBLIC_URL), AUTH_TOKEN)
    call.dial()  # its call-log records wait in Redis too

    body = scrape(down)
    assert value(body, "ivr_sms_deferred_webhooks") == 2
    assert value(body, "ivr_calllog_backlog_records") >= 1

    up = app_with(sms_config)  # the database is back
    up.extensions["ivr"].writer.drain()
    up.extensions["ivr"].writer.run_chores()
    body = scrape(up)
    assert value(body, "ivr_sms_deferred_webhooks") == 0
    assert value(body, "ivr_calllog_backlog_records") == 0


def test_a_start_sent_after_a_kept_stop_waits_its_turn_so_the_number_ends_opted_in(
        sms_config):
    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE)
    answered_without_a_message(text_in(down, number, "STOP"))

    up = app_with(sms_config)
    answered_without_a_message(text_in(up, number, "START"))  # queued behind the STOP

    assert up.extensions["ivr"].writer.run_chores() == 2
    assert not up.extensions["ivr"].sms_store.opted_out(number)
    assert [m.body for m in inbound_of(up, number)] == ["STOP", "START"]


def test_a_reply_handled_late_gets_its_answer_as_a_text(sms_config):
    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE)
    answered_without_a_message(text_in(down, number, "HELP"))

    up = app_with(sms_config)
    up.extensions["ivr"].writer.run_chores()

    from sqlalchemy import select

    from ivr_server.models import SmsMessage

    with up.extensions["ivr"].session_factory() as db:
        sent = list(db.scalars(select(SmsMessage).where(
            SmsMessage.to_number == number, SmsMessage.direction == "outbound")))
    assert [(m.kind, m.status) for m in sent] == [("help", "queued")]
    assert "Acme" in sent[0].body  # the help text, going out through the worker


def test_a_delivery_report_during_an_outage_updates_the_message_once_the_database_is_back(
        sms_config):
    up = app_with(sms_config)
    store = up.extensions["ivr"].sms_store
    sid = new_sid("SM")
    message = store.add_message(direction="outbound", kind="wait_estimate",
                                to_number=fresh_number(MOBILE[2:5]), from_number=COMPANY,
                                body="You're number 1", status="sent",
                                at=up.extensions["ivr"].clock(), message_sid=sid)
    down = app_with(sms_config, database=DEAD_DATABASE)

    assert report(down, sid, "delivered").status_code == 204

    assert store.message(message).status == "sent"
    up.extensions["ivr"].writer.run_chores()
    assert store.message(message).status == "delivered"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path).start()
    yield server
    server.kill()


def test_with_redis_away_too_a_text_is_held_in_memory_then_applied(sms_config, own_redis,
                                                                   caplog):
    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE, redis_url=own_redis.url)
    own_redis.kill()

    with caplog.at_level(logging.ERROR):
        answered_without_a_message(text_in(down, number, "STOP"))
    assert "kept in this process's memory" in caplog.text

    own_redis.start()
    down.extensions["ivr"].writer.run_chores()  # to Redis; the database is still away
    up = app_with(sms_config, redis_url=own_redis.url)
    assert not up.extensions["ivr"].sms_store.opted_out(number)
    assert up.extensions["ivr"].writer.run_chores() == 1
    assert up.extensions["ivr"].sms_store.opted_out(number)


def test_a_kept_text_that_fails_for_another_reason_than_an_outage_holds_nothing_back(
        sms_config, monkeypatch, caplog):
    from ivr_server import sms_hooks

    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE)
    answered_without_a_message(text_in(down, number, "BROKEN"))
    answered_without_a_message(text_in(down, number, "STOP"))

    handled = sms_hooks._incoming

    def a_bug_for_one_text(s, form, now, replayed):  # noqa: ANN001, ANN202
        if form.get("Body") == "BROKEN":
            raise KeyError("a bug this text trips over, every time")
        return handled(s, form, now, replayed)

    monkeypatch.setattr(sms_hooks, "_incoming", a_bug_for_one_text)
    up = app_with(sms_config)
    with caplog.at_level(logging.ERROR):
        assert up.extensions["ivr"].writer.run_chores() == 2

    assert up.extensions["ivr"].sms_store.opted_out(number)  # the STOP behind it applied
    deferred = up.extensions["ivr"].sms_deferred
    dead = up.extensions["ivr"].redis.lrange(deferred.dead_key, 0, -1)
    assert ['"BROKEN"' in raw for raw in dead] == [True]  # kept for a person to look at
    assert "set aside" in caplog.text
    assert value(scrape(up), "ivr_sms_deferred_webhooks") == 0
    assert value(scrape(up), "ivr_sms_deferred_dead_webhooks") == 1


def test_a_kept_text_waits_while_the_database_is_still_away(sms_config):
    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE)
    answered_without_a_message(text_in(down, number, "STOP"))

    assert down.extensions["ivr"].writer.run_chores() == 0  # still away: it stays in line
    assert value(scrape(down), "ivr_sms_deferred_webhooks") == 1
    up = app_with(sms_config)
    assert up.extensions["ivr"].writer.run_chores() == 1
    assert up.extensions["ivr"].sms_store.opted_out(number)


def test_a_stop_kept_in_one_process_and_a_start_handled_by_another_leave_the_number_opted_in(
        sms_config, own_redis):
    """The STOP waits in one web process's memory (Redis and the database away there), so
    another process, which reaches both, handles the START sent after it at once. The STOP
    replayed later is older than the START: the texter's latest word wins."""
    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE, redis_url=own_redis.url)
    own_redis.kill()
    answered_without_a_message(text_in(down, number, "STOP"))
    own_redis.start()

    up = app_with(sms_config, redis_url=own_redis.url)
    assert text_in(up, number, "START").status_code == 200  # nothing waits that it sees
    down.extensions["ivr"].writer.run_chores()  # the STOP reaches Redis now
    assert up.extensions["ivr"].writer.run_chores() == 1

    assert not up.extensions["ivr"].sms_store.opted_out(number)
    assert [m.body for m in inbound_of(up, number)] == ["START", "STOP"]


def test_a_process_stopping_hands_the_texts_it_held_to_redis(sms_config, own_redis):
    number = fresh_number(MOBILE[2:5])
    down = app_with(sms_config, database=DEAD_DATABASE, redis_url=own_redis.url)
    own_redis.kill()
    answered_without_a_message(text_in(down, number, "STOP"))
    own_redis.start()

    down.extensions["ivr"].close()  # a deploy stops it before its writer's next beat

    up = app_with(sms_config, redis_url=own_redis.url)
    assert up.extensions["ivr"].writer.run_chores() == 1
    assert up.extensions["ivr"].sms_store.opted_out(number)
