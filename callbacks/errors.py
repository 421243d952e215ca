"""Errors of the callbacks package; each message says what to tell ops or the log."""

from __future__ import annotations


class CallbackError(Exception):
    """Base of every error raised by the callbacks package."""


class NotCallable(CallbackError):
    """A number we must never call back; the message says why, `code` is a short stable
    reason for logs and metrics ("withheld", "premium_rate", ...)."""

    def __init__(self, message: str, code: str = ""):
        self.code = code
        super().__init__(message)


class InvalidTransition(CallbackError):
    """A callback asked to move between states that the lifecycle does not allow."""


class WindowError(CallbackError):
    """A bad calling-hours, business-hours, time-zone or holiday setting; the message names
    the setting and its value, e.g. `hours "25:00-17:00": 25:00 is not a time of day`."""
