"""Rendering SMS templates: sandboxed, strict about values, held to the segment budget."""

from __future__ import annotations

import pytest

from sms.errors import SmsTemplateError, TemplateTooLong
from sms.segments import encoding, segments
from sms.templates import DEFAULT_TEMPLATES, check_template, render_sms, render_text

LONG = {"company": "Northwind Plumbing & Heating Services Ltd", "position": 123,
        "wait": "between 45 and 60 minutes", "when": "on December 28 after 10:45 AM"}


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
@pytest.mark.parametrize("wait", ["less than a minute", "between 45 and 60 minutes",
                                  "more than 12 hours"])
def test_every_default_fits_two_gsm7_segments_with_long_values(name: str, wait: str) -> None:
    text = render_sms(name, {**LONG, "wait": wait})
    assert encoding(text) == "GSM-7"
    assert segments(text) <= 2
    assert "{" not in text


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
def test_every_default_compiles_and_uses_only_the_known_values(name: str) -> None:
    assert check_template(DEFAULT_TEMPLATES[name], known=LONG) is None


def test_texts_that_invite_replies_say_how_to_opt_out() -> None:
    for name in ("wait_estimate", "wait_update", "survey_question", "help"):
        assert "Reply STOP to opt out" in DEFAULT_TEMPLATES[name] or \
            "STOP to opt out" in DEFAULT_TEMPLATES[name], name


def test_the_wait_estimate_reads_as_written() -> None:
    assert render_sms("wait_estimate", {"company": "Acme", "position": 3,
                                        "wait": "about 5 minutes"}) == (
        "You're number 3 in line for Acme. Expected wait: about 5 minutes. "
        "Reply CALLBACK and we'll call you back instead. Reply STOP to opt out.")


def test_the_survey_question_asks_for_one_to_five() -> None:
    assert "Reply 1 (poor) to 5 (great)" in render_sms("survey_question", {"company": "Acme"})


def test_a_missing_value_fails_instead_of_sending_a_gap() -> None:
    with pytest.raises(SmsTemplateError, match="wait_estimate.*'wait' is undefined"):
        render_sms("wait_estimate", {"company": "Acme", "position": 3})


def test_a_too_long_render_names_the_template() -> None:
    # A Korean company name turns the text into UCS-2, where two segments hold only 134.
    with pytest.raises(TemplateTooLong, match="'wait_estimate'") as err:
        render_sms("wait_estimate", {**LONG, "company": "한국전력공사 고객센터"})
    assert err.value.encoding == "UCS-2"
    assert err.value.template == "wait_estimate"


def test_the_segment_budget_is_the_callers_choice() -> None:
    values = {"company": "Acme"}
    with pytest.raises(TemplateTooLong):
        render_sms("help", values, max_segments=1)
    assert segments(render_sms("help", values, max_segments=2)) == 2


def test_an_unknown_template_name_is_an_error() -> None:
    with pytest.raises(SmsTemplateError, match="no such template"):
        render_sms("wait_estimat", LONG)


def test_flow_overrides_are_rendered_by_name() -> None:
    templates = {**DEFAULT_TEMPLATES, "wait_estimate": "{{ company }}: wait {{ wait }}."}
    assert render_sms("wait_estimate", LONG, templates=templates) == \
        "Northwind Plumbing & Heating Services Ltd: wait between 45 and 60 minutes."


def test_whitespace_left_by_empty_values_and_wrapping_is_collapsed() -> None:
    text = "  Hi {{ name }}   there,\n   see   you  \n\n\n\nsoon  "
    assert render_text(text, {"name": ""}) == "Hi there,\nsee you\n\nsoon"


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(SmsTemplateError, match="unsafe|not safely"):
        render_text("{{ company.__class__.__mro__ }}", {"company": "Acme"})


def test_the_sandbox_refuses_runaway_repetition() -> None:
    with pytest.raises(SmsTemplateError, match="repeating"):
        render_text("{{ 'a' * 10**9 }}", {})


def test_check_template_reports_a_syntax_error() -> None:
    problem = check_template("Wait: {{ wait }")
    assert problem is not None and problem.startswith("template error on line 1")


def test_check_template_reports_a_misspelt_value() -> None:
    assert check_template("You're number {{ postion }}", known=LONG) == "unknown value: postion"


def test_check_template_without_known_names_checks_syntax_only() -> None:
    assert check_template("{{ anything }}") is None


def test_a_syntax_error_at_render_names_the_template() -> None:
    with pytest.raises(SmsTemplateError, match="'custom'"):
        render_text("{% if %}", {}, name="custom")
