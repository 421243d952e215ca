"""Logging for operators: text or JSON lines, each tagged with the call it was written for,
with callers' numbers masked.

- The CallSid of the call being handled is kept in a context variable; a filter puts it on
  every record, so any module's log line says which call it concerns without passing the
  sid around. A webhook's is set before the request's first hook and cleared at teardown;
  code that works for a call outside a webhook (an RQ job, the callback reconciler, a media
  stream once Twilio's `start` names the call) sets it with `call_context`/`name_call`.
- Callers' numbers in the message, its arguments and a traceback keep their last 4 digits
  (and, after a +, their country code): +14155550100 becomes +1******0100, enough to
  match a complaint, not to call anyone. Masked: E.164 (+ or %2B, 8 to 15 digits), numbers
  grouped as phones write them ("(415) 555-0100", "415-555-0100", "+44 20 7123 4567"),
  and bare digits as the value of a number's parameter ("From=4155550100"). A bare long
  number elsewhere is left alone: it is as likely a timestamp, a duration or an id.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import IO, Any

from flask import Flask, g, request
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from .config import ConfigError, LoggingConfig

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(call_tag)s: %(message)s"
NUMBER = re.compile(r"(\+|%2[Bb])(\d{8,15})(?!\d)")
# Digits in a phone's groups, as a whole token: not inside a sid, a time, a path, a decimal,
# an address or a UUID (what comes before and after is neither a word nor a digit group).
GROUPED = re.compile(
    r"(?<![\w+%.:/-])(?P<plus>\+|%2[Bb])?"
    r"(?P<body>(?:\d{1,3}[ .-]?)?\(\d{2,4}\)[ .-]?\d{2,4}[ .-]?\d{4}"  # (415) 555-0100
    r"|\d{1,4}(?:[ .-]\d{2,4}){1,6})"  # 415-555-0100, 1 415 555 0100, 44 20 7123 4567
    r"(?![\w(]|[.:/-]\d)")
# Bare digits as the value of a number's parameter: From=4155550100, 'to_number': '...'.
# Found by the value (cheap to scan for), then the key before it is checked.
VALUE = re.compile(r"(?<=[=:])(\s*['\"]?)(\d{7,15})(?![\w.])")
PHONE_KEY = re.compile(r"(?:\A|[^\w-])(?:From|To|Caller|Called|ForwardedFrom|from|to|caller"
                       r"|callee|[A-Za-z_]*(?:[Nn]umber|[Pp]hone))['\"]?\s*[=:]\Z")
CALL_SID = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{1,62}\Z")  # as voice.SID accepts

_call_sid: contextvars.ContextVar[str | None] = contextvars.ContextVar("ivr_call_sid",
                                                                       default=None)


# -- the call a line is about --------------------------------------------------------------


def current_call_sid() -> str | None:
    return _call_sid.get()


def _valid(call_sid: object) -> str | None:
    return call_sid if isinstance(call_sid, str) and CALL_SID.match(call_sid) else None


@contextlib.contextmanager
def call_context(call_sid: str | None = None) -> Iterator[None]:
    """Tag the log lines written inside the block with the call it works for (an RQ job, a
    reconciler pass over one request); the sid before it is back at the end. Not a sid
    (None, garbage from a websocket): lines say no call rather than a wrong one."""
    token = _call_sid.set(_valid(call_sid))
    try:
        yield
    finally:
        _call_sid.reset(token)


def name_call(call_sid: str | None) -> None:
    """Tag the lines written from now on, for code that learns its call midway (a media
    stream from Twilio's `start`, a worker from the job it took). Use it inside a
    `call_context` block (or a request), whose end restores the sid from before."""
    _call_sid.set(_valid(call_sid))


def install_request_context(app: Flask) -> None:
    """Take the CallSid of each Twilio webhook (form-encoded POST) for its log lines."""

    def bind() -> None:
        sid = None
        if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
            raw = request.form.get("CallSid", "")
            sid = raw if CALL_SID.match(raw) else None
        g._ivr_log_token = _call_sid.set(sid)

    def unbind(_exc: BaseException | None) -> None:
        token = g.pop("_ivr_log_token", None)
        if token is not None:
            try:
                _call_sid.reset(token)
            except ValueError:  # set in another context (should not happen): just clear it
                _call_sid.set(None)

    app.before_request_funcs.setdefault(None, []).insert(0, bind)
    app.teardown_request(unbind)


class CallSidFilter(logging.Filter):
    """Puts `call_sid` (None when no call is being handled) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "call_sid", None):
            record.call_sid = _call_sid.get()
        return True


# -- masking -------------------------------------------------------------------------------


def to_root_handlers(*loggers: logging.Logger) -> None:
    """Let these loggers (gunicorn's) write through the root's handlers, format and masking
    included, instead of handlers of their own."""
    for logger in loggers:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def mask_numbers(text: str) -> str:
    """'+14155550100' -> '+1******0100', '(415) 555-0100' -> '(***) ***-0100' and
    'From=4155550100' -> 'From=******0100' wherever such a number appears in `text`."""
    text = NUMBER.sub(_mask_match, text)
    return VALUE.sub(_mask_value, GROUPED.sub(_mask_grouped, text))


def _mask_match(match: re.Match[str]) -> str:
    plus, digits = match.group(1), match.group(2)
    code = next((digits[:n] for n in (1, 2, 3) if int(digits[:n]) in
                 COUNTRY_CODE_TO_REGION_CODE), "")
    hidden = len(digits) - len(code) - 4
    if hidden < 2:  # too short to keep the country code as well
        code, hidden = "", len(digits) - 4
    return f"{plus}{code}{'*' * hidden}{digits[-4:]}"


def _mask_grouped(match: re.Match[str]) -> str:
    plus, body = match.group("plus") or "", match.group("body")
    if not _phone_shaped(bool(plus), body):
        return match.group(0)
    groups = re.findall(r"\d+", body)
    keep = len(groups[0]) if plus and len(groups) > 1 and len(groups[0]) <= 3 and \
        int(groups[0]) in COUNTRY_CODE_TO_REGION_CODE else 0
    hide = sum(len(g) for g in groups) - 4 - keep  # digits after the code, but the last 4
    out, seen = [], 0
    for char in body:
        if char.isdigit():
            seen += 1
            char = "*" if keep < seen <= keep + hide else char
        out.append(char)
    return plus + "".join(out)


def _phone_shaped(plus: bool, body: str) -> bool:
    """Groups as a phone number is written, not as a date, a range or a version: 7 to 15
    digits ending in a group of 4; unless after a + or with a (area code), one separator
    throughout, and groups after the first of 3 or 4 digits (555-0100 only with a dash)."""
    groups = re.findall(r"\d+", body)
    digits = sum(len(g) for g in groups)
    if not 7 <= digits <= 15 or len(groups[-1]) != 4 and not plus:
        return False
    if plus or "(" in body:
        return True
    separators = set(re.findall(r"[ .-]", body))
    if len(separators) != 1 or any(len(g) < 3 for g in groups[1:]):
        return False
    if len(groups) == 2:  # a local number, 555-0100: an exchange starts with 2 to 9
        return separators == {"-"} and len(groups[0]) == 3 and groups[0][0] not in "01"
    return True


def _mask_value(match: re.Match[str]) -> str:
    start = match.start()
    if PHONE_KEY.search(match.string, max(0, start - 48), start) is None:
        return match.group(0)
    digits = match.group(2)
    return f"{match.group(1)}{'*' * (len(digits) - 4)}{digits[-4:]}"


class MaskNumbersFilter(logging.Filter):
    """Masks numbers in the formatted message, traceback and stack of every record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report
            return True
        record.msg, record.args = mask_numbers(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        return True


# -- formats -------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, call_sid, pid (+ exc_info)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "call_sid": getattr(record, "call_sid", None) or None, "pid": record.process}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with ` [CallSid]` after the logger name when there is a call."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        sid = getattr(record, "call_sid", None)
        record.call_tag = f" [{sid}]" if sid else ""
        return super().format(record)


def make_handler(fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler with the chosen format, the call's sid and masked numbers."""
    if fmt not in FORMATS:
        raise ConfigError(f"[logging] format {fmt!r} should be one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(CallSidFilter())
    handler.addFilter(MaskNumbersFilter())
    handler._ivr_handler = True  # type: ignore[attr-defined] - ours, replaced on a re-setup
    return handler


def level_of(name: str) -> int:
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int):
        raise ConfigError(f"[logging] level {name!r} should be DEBUG, INFO, WARNING or ERROR")
    return level


def setup_logging(config: LoggingConfig | None = None,
                  stream: IO[str] | None = None) -> logging.Handler:
    """Send the root logger's records to stderr as configured ([logging] format and level,
    IVR_LOG_FORMAT / IVR_LOG_LEVEL). Calling it again replaces the handler it added."""
    config = config or LoggingConfig()
    handler = make_handler(config.format.strip().lower(), stream)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ivr_handler", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_of(config.level))
    if root.level > logging.DEBUG:  # Twilio's client logs 15 lines a request at INFO
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    return handler
