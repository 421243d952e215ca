"""Errors raised by the speech package, so callers can tell a broken setup from bad audio."""

from __future__ import annotations


class SpeechError(Exception):
    """Base class for everything the speech package raises on purpose."""


class ModelUnavailable(SpeechError):
    """No model configured, its path is missing, or the folder is not a vosk model.

    The message always names the path, because the fix is in configuration.
    """


class AudioDecodeError(SpeechError):
    """The audio cannot be turned into PCM: unknown format, garbage, or too long."""
