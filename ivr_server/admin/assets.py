"""PLACEHOLDER: replaced by the assets helper."""

from __future__ import annotations


def vendored() -> None:
    return None
