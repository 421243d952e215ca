"""Errors from the admin side: each says what to fix, for the page or the command line."""

from __future__ import annotations


class AdminError(Exception):
    """Base of every admin error."""


class UserError(AdminError):
    """A user could not be created or changed (taken name, weak password, unknown role...)."""
