"""The people who sign in to /admin: created, disabled and checked here, stored in SQL.

Passwords are hashed with werkzeug (scrypt). A wrong username costs the same hash check as
a wrong password, so timing does not tell which names exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import ROLES, User
from .errors import UserError

MIN_PASSWORD = 10
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,63}")
_DUMMY_HASH = generate_password_hash("not a real password, only spends the same time")


def password_problem(password: str, username: str = "") -> str | None:
    """Why a password is refused, or None. Length over composition rules (NIST 800-63B)."""
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if username and password.lower() == username.lower():
        return "the password cannot be the username"
    if len(set(password)) < 4:
        return "the password is too repetitive"
    return None


def session_stamp(user: User) -> str:
    """Changes when the password does, so a new password signs out every other session."""
    return user.password_hash[-12:]


class UserStore:
    def __init__(self, session_factory: sessionmaker[Session], clock: Callable[[], datetime]):
        self._sessions = session_factory
        self._clock = clock

    def create(self, username: str, password: str, role: str) -> User:
        if not USERNAME.fullmatch(username):
            raise UserError("a username is 2-64 letters, digits or . _ @ -, starting with a "
                            "letter or digit")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        problem = password_problem(password, username)
        if problem:
            raise UserError(problem)
        user = User(username=username, password_hash=generate_password_hash(password),
                    role=role, disabled=False, created_at=self._clock())
        try:
            with self._sessions.begin() as db:
                db.add(user)
                db.flush()
                db.expunge(user)
        except IntegrityError:
            raise UserError(f"user {username!r} already exists") from None
        return user

    def get(self, user_id: int) -> User | None:
        with self._sessions() as db:
            user = db.get(User, user_id)
            if user is not None:
                db.expunge(user)
            return user

    def by_name(self, username: str) -> User | None:
        with self._sessions() as db:
            user = db.scalar(select(User).where(User.username == username))
            if user is not None:
                db.expunge(user)
            return user

    def all(self) -> list[User]:
        with self._sessions() as db:
            users = list(db.scalars(select(User).order_by(User.username)))
            db.expunge_all()
            return users

    def authenticate(self, username: str, password: str) -> User | None:
        """The enabled user with this password, or None (and the same work either way)."""
        user = self.by_name(username)
        if user is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(user.password_hash, password) or user.disabled:
            return None
        with self._sessions.begin() as db:
            stored = db.get(User, user.id)
            if stored is not None:
                stored.last_login_at = self._clock()
        return user

    def set_disabled(self, username: str, disabled: bool) -> User:
        return self._change(username, lambda u: setattr(u, "disabled", disabled))

    def set_role(self, username: str, role: str) -> User:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        return self._change(username, lambda u: setattr(u, "role", role))

    def set_password(self, username: str, password: str) -> User:
        problem = password_problem(password, username)
        if problem:
            raise UserError(problem)
        return self._change(username, lambda u: setattr(
            u, "password_hash", generate_password_hash(password)))

    def _change(self, username: str, change: Callable[[User], object]) -> User:
        with self._sessions.begin() as db:
            user = db.scalar(select(User).where(User.username == username))
            if user is None:
                raise UserError(f"no user {username!r}")
            change(user)
            db.flush()
            db.expunge(user)
        return user
