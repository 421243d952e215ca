"""Fixtures for the admin pages: signed-in test clients per role, with unique user names
(the PostgreSQL test database outlives a run)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

PASSWORD = "correct horse battery staple"


class AdminClient:
    """A test client signed in as one user; its POSTs carry the session's CSRF token."""

    def __init__(self, client: FlaskClient, username: str, role: str):
        self.client, self.username, self.role = client, username, role

    @property
    def csrf(self) -> str:
        with self.client.session_transaction() as session:
            return session.get("csrf_token", "")

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(path, data={**(data or {}), "csrf_token": self.csrf}, **kw)


def unique_name(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


def login(client: FlaskClient, username: str, password: str) -> Any:
    client.get("/admin/login")  # sets the session's CSRF token
    with client.session_transaction() as session:
        token = session.get("csrf_token", "")
    return client.post("/admin/login", data={"username": username, "password": password,
                                             "csrf_token": token})


@pytest.fixture
def create_user(app: Flask) -> Callable[..., str]:
    def _create(role: str, password: str = PASSWORD, username: str | None = None) -> str:
        name = username or unique_name(role)
        app.extensions["ivr_admin"].users.create(name, password, role)
        return name

    return _create


@pytest.fixture
def signed_in(app: Flask, create_user: Callable[..., str]) -> Callable[[str], AdminClient]:
    """signed_in("supervisor") -> an AdminClient for a new user with that role."""

    def _signed_in(role: str) -> AdminClient:
        name = create_user(role)
        client = app.test_client()
        response = login(client, name, PASSWORD)
        assert response.status_code == 302, response.text
        return AdminClient(client, name, role)

    return _signed_in
