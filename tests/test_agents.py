"""Agents go on and off duty through the API or `ivr agents`; config covers queues where
nobody signs in; the count is what the queue's wait estimates use."""

from __future__ import annotations

from click.testing import CliRunner

from ivr_server import create_app
from ivr_server.cli import main

from .conftest import ROOT

TOKEN = "agents-token-0123456789"


def _app(config, clock, **queues):  # noqa: ANN001, ANN003, ANN202
    return create_app(config.with_section("queues", **queues), clock=clock)


def test_the_api_is_off_without_a_token(config, clock):  # noqa: ANN001
    client = _app(config, clock).test_client()
    assert client.post("/agents/sign-in", json={"queue": "support", "agent": "ada"}
                       ).status_code == 404


def test_a_wrong_or_missing_token_is_refused(config, clock):  # noqa: ANN001
    client = _app(config, clock, api_token=TOKEN).test_client()
    body = {"queue": "support", "agent": "ada"}
    assert client.post("/agents/sign-in", json=body).status_code == 403
    assert client.post("/agents/sign-in", json=body,
                       headers={"Authorization": "Bearer nope"}).status_code == 403


def test_a_bare_token_without_the_bearer_scheme_is_refused(config, clock):  # noqa: ANN001
    client = _app(config, clock, api_token=TOKEN).test_client()
    body = {"queue": "support", "agent": "ada"}
    for refused in (TOKEN, f" {TOKEN}", f"Basic {TOKEN}", f"Bearer{TOKEN}", f"Token {TOKEN}"):
        resp = client.post("/agents/sign-in", json=body, headers={"Authorization": refused})
        assert resp.status_code == 403, refused
    for scheme in ("Bearer", "bearer", "BEARER"):  # the scheme word in any case (RFC 6750)
        resp = client.post("/agents/sign-in", json=body,
                           headers={"Authorization": f"{scheme} {TOKEN}"})
        assert resp.status_code == 200, scheme


def test_agents_sign_in_and_out_and_the_queue_knows_who_is_on_duty(config, clock):  # noqa: ANN001
    app = _app(config, clock, api_token=TOKEN)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for agent in ("ada", "grace"):
        resp = client.post("/agents/sign-in", json={"queue": "support", "agent": agent},
                           headers=auth)
        assert resp.status_code == 200 and resp.json["changed"]
    resp = client.post("/agents/sign-out", data={"queue": "support", "agent": "ada"},
                       headers=auth)
    assert resp.json == {"queue": "support", "agent": "ada", "changed": True,
                         "on_duty": ["grace"], "agents": 1}
    listed = client.get("/agents?queue=support", headers=auth).json
    assert listed["on_duty"] == ["grace"] and listed["agents"] == 1
    assert app.extensions["ivr"].queues.agents("support") == 1
    bad = client.post("/agents/sign-in", json={"queue": "../x", "agent": "ada"}, headers=auth)
    assert bad.status_code == 400 and "queue" in bad.json["error"]


def test_with_redis_down_the_api_says_so_and_asks_to_retry(config, clock):  # noqa: ANN001
    cfg = config.with_section("redis", url="redis://127.0.0.1:1/0")
    client = _app(cfg, clock, api_token=TOKEN).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for resp in (client.post("/agents/sign-in", json={"queue": "support", "agent": "ada"},
                             headers=auth),
                 client.get("/agents?queue=support", headers=auth),
                 client.get("/agents/connected?queue=support", headers=auth)):
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "5"
        assert "Redis" in resp.get_json()["error"]


def test_config_sets_agents_for_queues_nobody_signs_into(config, clock):  # noqa: ANN001
    app = _app(config, clock, agents={"sales": 3})
    assert app.extensions["ivr"].queues.agents("sales") == 3
    app.extensions["ivr"].queues.sign_out("sales", "x", 0)  # nobody to sign out: no change
    app.extensions["ivr"].queues.set_agents("sales", 1, 10)
    again = _app(config, clock, agents={"sales": 3})  # a restart keeps the live count
    assert again.extensions["ivr"].queues.agents("sales") == 1


def test_an_unknown_predictor_in_config_is_refused(config, clock):  # noqa: ANN001
    try:
        _app(config, clock, predictor="crystal-ball")
    except ValueError as exc:
        assert "crystal-ball" in str(exc) and "adaptive" in str(exc)
    else:
        raise AssertionError("accepted an unknown predictor")


def test_ivr_agents_signs_in_out_and_lists(redis_url: str, redis_prefix: str):
    env = {"REDIS_URL": redis_url, "IVR_REDIS_PREFIX": redis_prefix}
    runner = CliRunner()
    base = ["--config", str(ROOT / "config.toml"), "agents"]
    result = runner.invoke(main, [*base, "in", "support", "ada"], env=env)
    assert result.exit_code == 0 and "ada is on duty for support; 1 on duty" in result.output
    result = runner.invoke(main, [*base, "in", "support", "ada"], env=env)
    assert "(already)" in result.output
    result = runner.invoke(main, [*base, "list", "support"], env=env)
    assert result.output.strip() == "support: 1 on duty (ada), 0 waiting"
    result = runner.invoke(main, [*base, "out", "support", "ada"], env=env)
    assert "ada is off duty for support; 0 on duty" in result.output
