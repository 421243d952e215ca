"""SMS text from ops-editable Jinja2 templates, sandboxed, and held to a segment budget.

Every segment is billed as a message, so a render that would need more than max_segments
fails loudly (TemplateTooLong naming the template) instead of quietly costing double.
Undefined values fail too (StrictUndefined): a text reading "You're number  in line" is
worse than none. The {{ wait }} value is meant to be queue_estimator's phrase().
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError

from flows.templates import BoundedSandbox

from .errors import SmsTemplateError
from .segments import fit

# Default English texts; every one stays within two GSM-7 segments with realistic values
# (a 40-character company name, a three-digit position, "between 45 and 60 minutes").
# Twilio answers STOP/START/HELP itself on long codes unless Advanced Opt-Out is set up;
# opted_out, opted_in and help are for when it is not, so callers do not get two replies.
DEFAULT_TEMPLATES: dict[str, str] = {
    "wait_estimate": (
        "You're number {{ position }} in line for {{ company }}. Expected wait: {{ wait }}. "
        "Reply CALLBACK and we'll call you back instead. Reply STOP to opt out."
    ),
    "wait_update": (
        "{{ company }} update: you're now number {{ position }} in line. Expected wait: "
        "{{ wait }}. Reply CALLBACK and we'll call you back instead. Reply STOP to opt out."
    ),
    "survey_question": (
        "{{ company }}: How did we do on your call today? Reply 1 (poor) to 5 (great). "
        "Reply STOP to opt out."
    ),
    "survey_thanks": "{{ company }}: thank you for your feedback.",
    "help": (
        "{{ company }}: texts about your place in our phone queue and a short survey after "
        "some calls. Reply CALLBACK for a call back, STOP to opt out, START to opt back in. "
        "Msg&data rates may apply."
    ),
    "opted_out": (
        "{{ company }}: you're unsubscribed and won't get more texts from us. "
        "Reply START to opt back in."
    ),
    "opted_in": (
        "{{ company }}: you're subscribed again to queue updates and surveys. Reply HELP for "
        "help, STOP to opt out."
    ),
    "callback_requested": (
        "{{ company }}: thanks, we'll call you back on this number as soon as an agent is "
        "free. Reply STOP to opt out."
    ),
    "callback_confirmed": (
        "{{ company }}: we'll call you back {{ when }} on this number, in your turn. "
        "Reply CANCEL if you no longer need the call."
    ),
    "callback_cancelled": (
        "{{ company }}: your call back is cancelled, and you won't get more texts from us. "
        "Reply START to opt back in."
    ),
    "unknown_reply": (
        "{{ company }}: sorry, we didn't understand that. Reply CALLBACK for a call back, "
        "HELP for help or STOP to opt out."
    ),
}



class _SmsSandbox(BoundedSandbox):
    """The flows' bounded sandbox: Python internals blocked, ** and sequence * capped."""


# optimized=False: no constant folding, so merely checking a template never evaluates it.
_ENV = _SmsSandbox(undefined=StrictUndefined, autoescape=False, optimized=False,
                   keep_trailing_newline=False)
_ENV.globals = {"range": _ENV.globals["range"]}
_ERRORS = (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError,
           AttributeError, LookupError)


def check_template(text: str, known: Collection[str] | None = None) -> str | None:
    """The first problem with a template (syntax, or a name outside `known`), or None."""
    try:
        ast = _ENV.parse(text)
        _compile(text)
    except TemplateSyntaxError as exc:
        return f"template error on line {exc.lineno}: {exc.message}"
    if known is not None:
        unknown = sorted(meta.find_undeclared_variables(ast) - set(known) - set(_ENV.globals))
        if unknown:
            return f"unknown value{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
    return None


def render_text(text: str, values: Mapping[str, Any], max_segments: int = 2, *,
                name: str = "sms") -> str:
    """Render template text and hold it to max_segments; errors name the template `name`."""
    try:
        out = _compile(text).render(values)
    except TemplateSyntaxError as exc:
        raise SmsTemplateError(name, f"line {exc.lineno}: {exc.message}") from None
    except _ERRORS as exc:
        raise SmsTemplateError(name, str(exc)) from None
    return fit(_tidy(out), max_segments, template=name)


def render_sms(template: str, values: Mapping[str, Any], max_segments: int = 2, *,
               templates: Mapping[str, str] = DEFAULT_TEMPLATES) -> str:
    """Render the template named `template` (a flow's overrides merged over the defaults can
    be passed as `templates`) and hold it to max_segments."""
    if template not in templates:
        raise SmsTemplateError(template, f"no such template (known: {', '.join(templates)})")
    return render_text(templates[template], values, max_segments, name=template)


def _tidy(text: str) -> str:
    """Collapse the spaces an empty value or template line-wrapping leaves; each one sent
    is a character billed, and a double space reads as a mistake."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@lru_cache(maxsize=512)
def _compile(text: str) -> Template:
    return _ENV.from_string(text)
