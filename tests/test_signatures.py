"""Only Twilio can drive a call: every webhook checks X-Twilio-Signature and answers 403."""

from __future__ import annotations

import pytest

from ivr_server import create_app

from .conftest import AUTH_TOKEN, PUBLIC_URL, call_params, sign


def test_signed_incoming_call_is_answered_with_twiml(post):
    resp = post("/voice/incoming", call_params(CallStatus="ringing"))
    assert resp.status_code == 200
    assert resp.mimetype == "text/xml"
    assert b"<Gather" in resp.data


def test_unsigned_webhook_is_refused_and_starts_nothing(post, app):
    resp = post("/voice/incoming", call_params(CallStatus="ringing"), signed=False)
    assert resp.status_code == 403
    assert app.extensions["ivr"].sessions.load("CA" + "0" * 32) is None


def test_signature_made_with_another_token_is_refused(post):
    resp = post("/voice/incoming", call_params(), token="not-the-account-token")
    assert resp.status_code == 403


def test_parameters_changed_after_signing_are_refused(app):
    params = call_params(Digits="1")
    signature = sign(PUBLIC_URL + "/voice/input?node=main_menu&turn=1", params)
    tampered = {**params, "Digits": "3"}
    resp = app.test_client().post("/voice/input?node=main_menu&turn=1", data=tampered,
                                  base_url=PUBLIC_URL,
                                  headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 403


def test_signature_for_another_url_is_refused(app):
    params = call_params()
    signature = sign("https://attacker.example/voice/incoming", params)
    resp = app.test_client().post("/voice/incoming", data=params, base_url=PUBLIC_URL,
                                  headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 403


# Every route (voice, SMS, the media stream, the allowlisted rest): tests/test_route_access.py


def test_unknown_voice_url_gets_403_unsigned_and_the_safe_path_signed(post):
    assert post("/voice/nowhere", call_params(), signed=False).status_code == 403
    resp = post("/voice/nowhere", call_params())
    assert resp.status_code == 200
    assert b"having trouble" in resp.data


@pytest.mark.parametrize("trust_proxy, expected", [(True, 200), (False, 403)])
def test_forwarded_host_is_honoured_only_when_the_proxy_is_trusted(config, clock, trust_proxy,
                                                                   expected):
    cfg = (config.with_section("server", public_base_url="", trust_proxy=trust_proxy))
    app = create_app(cfg, clock=clock)
    params = call_params(CallStatus="ringing")
    public = "https://calls.example.com/voice/incoming"
    resp = app.test_client().post(
        "/voice/incoming", data=params, base_url="http://10.0.0.5:8000",
        headers={"X-Twilio-Signature": sign(public, params), "X-Forwarded-Proto": "https",
                 "X-Forwarded-Host": "calls.example.com", "X-Forwarded-Port": "443"})
    assert resp.status_code == expected


def test_dev_setting_turns_checks_off_and_warns(config, clock, caplog):
    app = create_app(config.with_section("twilio", dev_skip_signatures=True), clock=clock)
    assert "SIGNATURE CHECKS ARE OFF" in caplog.text
    resp = app.test_client().post("/voice/incoming", data=call_params(CallStatus="ringing"),
                                  base_url=PUBLIC_URL)
    assert resp.status_code == 200


def test_without_a_configured_token_a_local_one_is_generated_and_used(config, clock):
    cfg = config.with_section("twilio", auth_token="")
    app = create_app(cfg, clock=clock)
    token = (cfg.instance_dir / "dev_auth_token").read_text().strip()
    assert token and token != AUTH_TOKEN
    params = call_params(CallStatus="ringing")
    client = app.test_client()
    ok = client.post("/voice/incoming", data=params, base_url=PUBLIC_URL, headers={
        "X-Twilio-Signature": sign(PUBLIC_URL + "/voice/incoming", params, token)})
    assert ok.status_code == 200
    restarted = create_app(cfg, clock=clock).test_client()  # the token survives a restart
    params = call_params(call_sid="CA" + "2" * 32, CallStatus="ringing")
    again = restarted.post("/voice/incoming", data=params, base_url=PUBLIC_URL, headers={
        "X-Twilio-Signature": sign(PUBLIC_URL + "/voice/incoming", params, token)})
    assert again.status_code == 200


def test_our_signer_agrees_with_twilios_own_helper_on_tricky_input():
    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    from ivr_server.signature import Signer

    cases = [
        ("https://ivr.example.test/voice/input?node=menu&turn=2",
         MultiDict([("Digits", "1"), ("CallSid", "CA1"), ("Zed", "ü ✓ &=?")])),
        ("https://ivr.example.test:443/voice/incoming", MultiDict([("A", "2"), ("A", "1")])),
        ("http://127.0.0.1:5000/voice/status", MultiDict()),
    ]
    for url, params in cases:
        theirs = RequestValidator(AUTH_TOKEN)
        ours = Signer(AUTH_TOKEN)
        signature = theirs.compute_signature(url, params)
        assert ours.sign(url, params) == signature
        assert ours.valid(url, params, signature)
        assert theirs.validate(url, params, ours.sign(url, params))
    # Twilio may sign with or without the default port: both are accepted, others are not.
    params = MultiDict([("CallSid", "CA1")])
    signed_with_port = Signer(AUTH_TOKEN).sign("https://ivr.example.test:443/voice/x", params)
    assert Signer(AUTH_TOKEN).valid("https://ivr.example.test/voice/x", params, signed_with_port)
    assert not Signer(AUTH_TOKEN).valid("https://ivr.example.test:8443/voice/x", params,
                                        signed_with_port)
