"""Errors of the sms package; each says what to tell ops or the log, not just that it failed."""

from __future__ import annotations


class SmsError(Exception):
    """Base of every error raised by the sms package."""


class NotTextable(SmsError):
    """A number we must not text; `reason` is a short stable code for logs and metrics."""

    def __init__(self, number: str, reason: str, detail: str = ""):
        self.number, self.reason, self.detail = number, reason, detail
        tail = f": {detail}" if detail else ""
        super().__init__(f"{number!r} is not textable ({reason}){tail}")


class TemplateTooLong(SmsError):
    """A message needs more segments than allowed: each segment is billed as a message."""

    def __init__(self, segments: int, max_segments: int, encoding: str, length: int,
                 template: str | None = None):
        self.segments, self.max_segments = segments, max_segments
        self.encoding, self.length, self.template = encoding, length, template
        where = f"template {template!r}: " if template else ""
        super().__init__(f"{where}{length} characters of {encoding} need {segments} segments, "
                         f"more than the {max_segments} allowed")


class SmsTemplateError(SmsError):
    """A template does not compile or cannot be rendered with the values given."""

    def __init__(self, template: str, message: str):
        self.template = template
        super().__init__(f"template {template!r}: {message}")
