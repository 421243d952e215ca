"""Logging for operators: text or JSON lines, each tagged with the call it was written for,
with callers' numbers masked.

- The CallSid of the webhook being handled is kept in a context variable (set before the
  request's first hook, cleared at teardown); a filter puts it on every record, so any
  module's log line says which call it concerns without passing the sid around.
- Every E.164-looking number (+ or its URL encoding %2B, then 8 to 15 digits) in the
  message, its arguments and a traceback keeps its country code and last 4 digits:
  +14155550100 becomes +1******0100 - enough to match a complaint, not to call anyone.
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
CALL_SID = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{1,62}\Z")  # as voice.SID accepts

_call_sid: contextvars.ContextVar[str | None] = contextvars.ContextVar("ivr_call_sid",
                                                                       default=None)


# -- the call a line is about --------------------------------------------------------------


def current_call_sid() -> str | None:
    return _call_sid.get()


@contextlib.contextmanager
def call_context(call_sid: str | None) -> Iterator[None]:
    """Tag the log lines written inside the block (an RQ job about one call)."""
    token = _call_sid.set(call_sid if call_sid and CALL_SID.match(call_sid) else None)
    try:
        yield
    finally:
        _call_sid.reset(token)


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


def mask_numbers(text: str) -> str:
    """'+14155550100' -> '+1******0100' wherever a number appears in `text`."""
    return NUMBER.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    plus, digits = match.group(1), match.group(2)
    code = next((digits[:n] for n in (1, 2, 3) if int(digits[:n]) in
                 COUNTRY_CODE_TO_REGION_CODE), "")
    hidden = len(digits) - len(code) - 4
    if hidden < 2:  # too short to keep the country code as well
        code, hidden = "", len(digits) - 4
    return f"{plus}{code}{'*' * hidden}{digits[-4:]}"


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
