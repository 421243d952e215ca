"""`ivr users create|disable|enable|password|role|list`: who may sign in to /admin.

The first admin has to come from the server's shell; after that, admins can manage users
on the Users page too. Passwords are read from a prompt (or stdin), never from argv,
where `ps` and shell history would keep them.
"""

from __future__ import annotations

import sys

import click

from . import db
from .admin.audit import Audit
from .admin.errors import UserError
from .admin.users import UserStore
from .clock import system_clock
from .config import Config
from .models import ROLES


def _stores(config: Config) -> tuple[UserStore, Audit]:
    if config.database_url.startswith("sqlite"):  # as `ivr serve` does: a fresh install
        db.upgrade(config.database_url)          # may create its first user before serving
    elif db.current_revision(config.database_url) is None:
        raise click.ClickException("the database has no schema yet: run `ivr db upgrade`")
    sessions = db.make_session_factory(db.make_engine(config.database_url))
    return UserStore(sessions, system_clock), Audit(sessions, system_clock)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("users")
def users_group() -> None:
    """People who sign in to the supervisor and ops pages (/admin)."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="supervisor: calls and metrics; ops: also flows; admin: also users")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.pass_obj
def users_create(config: Config, username: str, role: str, password_stdin: bool) -> None:
    """Create USERNAME with ROLE (asks for the password twice)."""
    users, audit = _stores(config)
    try:
        users.create(username, _read_password(password_stdin), role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(None, "user_created", username, role=role, via="cli")
    click.echo(f"created {username} ({role})")


def _change(config: Config, username: str, action: str, change: str, **data: str) -> None:
    users, audit = _stores(config)
    try:
        if action == "disable":
            users.set_disabled(username, True)
        elif action == "enable":
            users.set_disabled(username, False)
        elif action == "role":
            users.set_role(username, data["role"])
        else:
            users.set_password(username, data["password"])
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(None, f"user_{action}", username, via="cli",
                 **{k: v for k, v in data.items() if k != "password"})
    click.echo(f"{username}: {change}")


@users_group.command("disable")
@click.argument("username")
@click.pass_obj
def users_disable(config: Config, username: str) -> None:
    """USERNAME can no longer sign in; their open sessions end on their next click."""
    _change(config, username, "disable", "disabled")


@users_group.command("enable")
@click.argument("username")
@click.pass_obj
def users_enable(config: Config, username: str) -> None:
    """USERNAME may sign in again."""
    _change(config, username, "enable", "enabled")


@users_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_obj
def users_role(config: Config, username: str, role: str) -> None:
    """Give USERNAME another ROLE."""
    _change(config, username, "role", f"now {role}", role=role)


@users_group.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.pass_obj
def users_password(config: Config, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password; their other sessions end."""
    _change(config, username, "password", "password changed",
            password=_read_password(password_stdin))


@users_group.command("list")
@click.pass_obj
def users_list(config: Config) -> None:
    """Every user, with role and status."""
    users, _ = _stores(config)
    rows = users.all()
    if not rows:
        click.echo("no users: create one with `ivr users create NAME --role admin`")
    for user in rows:
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_login_at \
            else "never signed in"
        click.echo(f"{user.username:<24} {user.role:<10} "
                   f"{'disabled' if user.disabled else 'active':<9} {last}")
