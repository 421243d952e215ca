"""`ivr callbacks list|cancel`: the callbacks waiting to be placed, from the server's shell.

Reads and changes the durable requests in SQL (the database of the config); a cancel is a
state change like any other, with its event in the original call's timeline.
"""

from __future__ import annotations

import click

from callbacks.states import ACTIVE, State

from .callback_store import CallbackStore
from .clock import system_clock
from .config import Config
from .db import make_engine, make_session_factory


def _store(config: Config) -> CallbackStore:
    return CallbackStore(make_session_factory(make_engine(config.database_url)))


@click.group("callbacks")
def callbacks_group() -> None:
    """Callback requests: who will be called back, when, and how it went."""


@callbacks_group.command("list")
@click.option("--queue", help="only this queue")
@click.option("--all", "everything", is_flag=True, help="finished ones too (latest 200)")
@click.pass_obj
def callbacks_list(config: Config, queue: str | None, everything: bool) -> None:
    """Active callback requests, oldest first (numbers masked to the last four digits)."""
    states = list(State) if everything else list(ACTIVE)
    rows = _store(config).in_states(states, queue=queue, limit=200 if everything else 10_000)
    if not rows:
        click.echo("no callbacks" + ("" if everything else " waiting"))
        return
    for row in rows:
        due = row.due_at.strftime("%Y-%m-%d %H:%M UTC") if row.due_at else "-"
        masked = "*" * max(0, len(row.number) - 4) + row.number[-4:]
        click.echo(f"{row.id:>6}  {row.state:<10} {row.queue:<16} {masked:<16} due {due}  "
                   f"attempts {row.attempts}  {row.reason}"
                   + (f"  last {row.last_outcome}" if row.last_outcome else ""))


@callbacks_group.command("cancel")
@click.argument("callback_id", type=int)
@click.option("--why", default="cancelled by ops", show_default=True)
@click.pass_obj
def callbacks_cancel(config: Config, callback_id: int, why: str) -> None:
    """Cancel request CALLBACK_ID unless its call is already being placed."""
    store = _store(config)
    row = store.get(callback_id)
    if row is None:
        raise click.ClickException(f"no callback {callback_id}")
    moved = store.move(callback_id, State.CANCELLED, system_clock(), kind="callback_cancelled",
                       expect=[State.REQUESTED, State.SCHEDULED], data={"why": why})
    if moved is None:
        raise click.ClickException(f"callback {callback_id} is {row.state}: only requested or "
                                   "scheduled callbacks can be cancelled")
    click.echo(f"callback {callback_id} cancelled")
