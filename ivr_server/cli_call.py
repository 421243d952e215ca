"""`ivr call` (a phone call to a running server, from the terminal) and `ivr flows test`.

`ivr call` signs every request as Twilio would, so it exercises the same path real
calls take, signature check included; a person can key in choices, or a script of
steps (the flow-test step syntax) can drive the call and fail the command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flows.errors import FlowLoadError
from flows.yaml_source import line_for, parse_with_lines

from .config import Config, load_config
from .simulator import DialOutcome, HttpTransport, SimulatedCall, SimulatorError, TransportError
from .simulator.script import Step, StepFailed, finish, read_step, run_step

DIAL_CHOICES = {"a": "answers", "b": "busy", "n": "no-answer", "f": "failed"}


def _config(obj: object) -> Config:
    return obj if isinstance(obj, Config) else load_config()


def find_token(config: Config, token: str | None) -> str:
    """--token, else TWILIO_AUTH_TOKEN, else the local token `ivr serve` generated."""
    if token:
        return token
    if config.twilio.auth_token:
        return config.twilio.auth_token
    path = config.instance_dir / "dev_auth_token"
    if path.exists():
        return path.read_text().strip()
    raise click.ClickException(f"no token to sign with: set TWILIO_AUTH_TOKEN, pass --token, or "
                               f"start the server once (`ivr serve`) so it writes {path}")


@click.command("call")
@click.option("--url", default=None, help="server to call [default: http://HOST:PORT from config]")
@click.option("--public-url", default=None,
              help="the URL Twilio uses for the server, which signatures cover "
                   "[default: PUBLIC_BASE_URL, else --url]")
@click.option("--from", "from_", default="+14155550100", show_default=True,
              help="the caller's number")
@click.option("--to", default=None, help="the number called [default: the first configured]")
@click.option("--script", "script", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML list of steps (hear, press, silence, ...) to run instead of a person")
@click.option("--token", default=None, help="auth token to sign with [default: from config]")
@click.pass_obj
def call_command(obj: object, url: str | None, public_url: str | None, from_: str,
                 to: str | None, script: str | None, token: str | None) -> None:
    """Place a simulated call to a running server: hear the prompts, key in choices."""
    config = _config(obj)
    host = config.server.host if config.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = (url or f"http://{host}:{config.server.port}").rstrip("/")
    public = public_url or config.server.public_base_url or url
    to = to or next(iter(config.flows.numbers), "+15005550006")
    call = SimulatedCall(HttpTransport(url, public_base_url=public), find_token(config, token),
                         from_=from_, to=to)
    steps = _read_script(Path(script)) if script else None
    shown = 0

    def show() -> None:
        nonlocal shown
        for moment in call.transcript[shown:]:
            click.echo(str(moment))
        shown = len(call.transcript)

    try:
        if steps is None:
            _interactive(call, show)
        else:
            _scripted(call, steps, str(script), show)
    except (SimulatorError, TransportError) as exc:
        show()
        raise click.ClickException(str(exc)) from None
    show()
    click.echo(f"call {call.call_sid} ended: {call.status}, {int(call.elapsed)}s, "
               f"{call.request_count} requests", err=True)


def _interactive(call: SimulatedCall, show: object) -> None:
    call.dial()
    while not call.ended:
        show()  # type: ignore[operator]
        try:
            if call.waiting_for == "dial":
                answer = click.prompt(f"ringing {call.transferred_to}: [a]nswers, [b]usy, "
                                      "[n]o-answer, [f]ailed, [h]ang up", default="a")
                if answer.strip().lower().startswith("h"):
                    call.hangup()
                else:
                    call.answer_dial(DialOutcome.parse(
                        DIAL_CHOICES.get(answer.strip().lower()[:1], "answers")))
                continue
            what = "Enter: leave a message" if call.waiting_for == "record" else \
                "keys (Enter: silence, s TEXT: speak"
            keys = click.prompt(f"{what}, h: hang up)", default="", show_default=False).strip()
        except click.Abort:  # Ctrl-C / end of input: the caller hangs up
            click.echo()
            call.hangup()
            break
        try:
            if keys.lower() in ("h", "hangup", "q"):
                call.hangup()
            elif call.waiting_for == "record":
                call.record()
            elif keys.lower().startswith("s "):
                call.speak(keys[2:].strip())
            elif keys:
                call.press(keys)
            else:
                call.silence()
        except (ValueError, SimulatorError) as exc:
            if call.waiting_for is None and not call.ended:
                raise  # the server failed mid-request: the call cannot go on
            click.echo(f"  {exc}")  # keys that are not keys, speech at a keys-only prompt


def _read_script(path: Path) -> list[Step]:
    try:
        data, lines = parse_with_lines(path.read_text(encoding="utf-8"), str(path))
    except FlowLoadError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    root: tuple[str | int, ...] = ()
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        data, root = data["steps"], ("steps",)
    if not isinstance(data, list):
        raise click.ClickException(f"{path}:1: a script is a list of steps, e.g. - press: \"1\"")
    steps, problems = [], []
    for i, item in enumerate(data):
        line = line_for(lines, (*root, i))
        try:
            steps.append(read_step(item, line))
        except ValueError as exc:
            problems.append(f"{path}:{line}: {exc}")
    if problems:
        raise click.ClickException("\n".join(problems))
    return steps


def _scripted(call: SimulatedCall, steps: list[Step], file: str, show: object) -> None:
    call.dial()
    for step in steps:
        show()  # type: ignore[operator]
        try:
            run_step(call, step)
        except StepFailed as exc:
            show()  # type: ignore[operator]
            click.echo(f"{file}:{exc.line}: {exc}", err=True)
            sys.exit(1)
        except (SimulatorError, TransportError) as exc:
            show()  # type: ignore[operator]
            click.echo(f"{file}:{step.line}: {step.kind}: {exc}", err=True)
            sys.exit(1)
    finish(call)


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_obj
def flows_test_command(obj: object, paths: tuple[str, ...]) -> None:
    """Run flow tests (*.test.yaml) through the real server in-process; exit 1 on a failure.

    PATHS are test files or folders [default: the configured flows folder]. No phone,
    Twilio account or CRM is needed: lookups are answered by each test's `lookups:`.
    """
    from .flowtest import run_flow_tests

    config = _config(obj)
    failures = run_flow_tests(list(paths) or [str(config.flows_dir)], config)
    sys.exit(1 if failures else 0)
