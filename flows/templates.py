"""Templates and conditions in Jinja2's sandbox: ops text can read call data, never run code."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, pass_context
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment


@pass_context
def _finalize(_ctx: Any, value: Any) -> Any:
    """Needing the context stops Jinja folding constant output at compile time, so merely
    checking a file with `{{ "a" * 10**10 }}` in it cannot hang the loader."""
    return value


MAX_EXPONENT = 64
MAX_REPEAT = 10_000


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox stops Python internals, not work: cap ** and sequence * so a typo in a
    prompt cannot pin a web worker's CPU or memory on every call."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) \
                        and len(seq) * n > MAX_REPEAT:
                    raise SecurityError(f"repeating a sequence to over {MAX_REPEAT} items")
        return super().call_binop(context, operator, left, right)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """Fail loudly: ChainableUndefined would otherwise turn the attempt into silence."""
        raise SecurityError(f"access to attribute {attribute!r} of a "
                            f"{type(obj).__name__!r} object is unsafe")


# optimized=False: no constant folding while a file is only being checked.
# ChainableUndefined: a field the CRM did not send ({{ customer.name }}) renders empty
# instead of ending the call with an error.
_ENV = BoundedSandbox(undefined=ChainableUndefined, autoescape=False, optimized=False,
                       finalize=_finalize)
# Only plain helpers; cycler, joiner, lipsum and namespace would print Python object reprs.
_ENV.globals = {"range": _ENV.globals["range"], "dict": dict}
_ERRORS = (TemplateSyntaxError, SecurityError, UndefinedError, TypeError, ValueError,
           ArithmeticError, AttributeError, LookupError)


class TemplateError(ValueError):
    """A template or condition that does not compile or cannot be evaluated."""


def check_template(text: str) -> str | None:
    """The syntax error in a template, or None."""
    try:
        _template(text)
    except TemplateSyntaxError as exc:
        return f"template error: {exc.message}"
    return None


def check_expression(expr: str) -> str | None:
    """The syntax error in a condition, or None."""
    try:
        _expression(expr)
    except TemplateSyntaxError as exc:
        return f"condition error: {exc.message}"
    return None


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render a template; plain text without markup is returned as is (the common case)."""
    if "{" not in text:
        return text
    try:
        return " ".join(_template(text).render(context).split())
    except _ERRORS as exc:
        raise TemplateError(str(exc)) from None


def evaluate(expr: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a condition to a bool; an undefined name counts as false, not as an error."""
    try:
        value = _expression(expr)(**context)
    except _ERRORS as exc:
        raise TemplateError(str(exc)) from None
    return bool(value) and not isinstance(value, Undefined)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render strings inside nested data (a set node's vars, an http body)."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


@lru_cache(maxsize=4096)
def _template(text: str):  # noqa: ANN202 - jinja2 Template
    return _ENV.from_string(text)


@lru_cache(maxsize=4096)
def _expression(expr: str):  # noqa: ANN202 - jinja2 TemplateExpression
    return _ENV.compile_expression(expr, undefined_to_none=False)
