"""`ivr agents in|out|list`: who is on duty per queue, from the server's own shell."""

from __future__ import annotations

import time

import click

from .config import Config
from .queue_state import QueueState
from .redis_conn import connect, running_server_url


def _queues(config: Config) -> QueueState:
    """REDIS_URL, else the embedded Redis of a running `ivr serve` in the instance folder."""
    url = running_server_url(config.redis.url, config.instance_dir)
    if url is None:
        raise click.ClickException("no Redis: set REDIS_URL, or start `ivr serve` first")
    return QueueState(connect(url), config.redis.key_prefix)


@click.group("agents")
def agents_group() -> None:
    """Agents on duty per queue (the wait estimates divide the work by them)."""


@agents_group.command("in")
@click.argument("queue")
@click.argument("agent")
@click.pass_obj
def agents_in(config: Config, queue: str, agent: str) -> None:
    """AGENT goes on duty for QUEUE."""
    _change(config, queue, agent, signing_in=True)


@agents_group.command("out")
@click.argument("queue")
@click.argument("agent")
@click.pass_obj
def agents_out(config: Config, queue: str, agent: str) -> None:
    """AGENT goes off duty for QUEUE."""
    _change(config, queue, agent, signing_in=False)


@agents_group.command("list")
@click.argument("queue")
@click.pass_obj
def agents_list(config: Config, queue: str) -> None:
    """Who is on duty for QUEUE, and how many callers wait."""
    queues = _queues(config)
    names = queues.on_duty(queue)
    click.echo(f"{queue}: {queues.agents(queue) or 0} on duty"
               + (f" ({', '.join(names)})" if names else "")
               + f", {len(queues.waiting(queue))} waiting")


def _change(config: Config, queue: str, agent: str, *, signing_in: bool) -> None:
    queues = _queues(config)
    try:
        change = queues.sign_in if signing_in else queues.sign_out
        changed = change(queue, agent, time.time())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    state = "on" if signing_in else "off"
    click.echo(f"{agent} is {state} duty for {queue}" + ("" if changed else " (already)")
               + f"; {queues.agents(queue) or 0} on duty")
