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
from .simulator import (
                         DialOutcome,
                         HttpTransport,
                         RecordingsServer,
                         SimulatedCall,
                         SimulatorError,
                         TransportError,
)
from .simulator.queues import SimulatedQueues
from .simulator.script import Step, StepFailed, finish, read_step, run_step

DIAL_CHOICES = {"a": "answers", "b": "busy", "n": "no-answer", "f": "failed"}
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32


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
@click.option("--to", default=None,
              help="the number called [default: one mapped to the default flow]")
@click.option("--script", "script", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML list of steps (hear, press, silence, ...) to run instead of a person")
@click.option("--token", default=None, help="auth token to sign with [default: from config]")
@click.option("--account-sid", default=None,
              help="the call's AccountSid; the server's TWILIO_ACCOUNT_SID must match for "
                   f"spoken answers [default: from config, else {DEFAULT_ACCOUNT_SID}]")
@click.option("--recordings-port", type=int, default=0,
              help="port of the stand-in Twilio API (spoken answers are fetched from it, "
                   "streamed answers redirect the call through it) [default: any free port]")
@click.option("--voice", default="en", show_default=True,
              help="espeak-ng voice for spoken answers (s TEXT, say:), e.g. ko")
@click.pass_obj
def call_command(obj: object, url: str | None, public_url: str | None, from_: str,
                 to: str | None, script: str | None, token: str | None,
                 account_sid: str | None, recordings_port: int, voice: str) -> None:
    """Place a simulated call to a running server: hear the prompts, key in choices.

    Spoken answers (s TEXT, say:) are recorded or, at prompts that stream, sent over the
    media-stream websocket; a loopback stand-in for Twilio's REST API serves recordings and
    takes the server's call redirects. Start the server with TWILIO_API_BASE_URL set to
    the URL printed and TWILIO_ACCOUNT_SID equal to --account-sid."""
    config = _config(obj)
    host = config.server.host if config.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = (url or f"http://{host}:{config.server.port}").rstrip("/")
    public = public_url or config.server.public_base_url or url
    # By default the caller dials the default flow (a number mapped to it, if any).
    to = to or next((n for n, f in config.flows.numbers.items() if f == config.flows.default),
                    "+15005550006")
    auth_token = find_token(config, token)
    account_sid = account_sid or config.twilio.account_sid or DEFAULT_ACCOUNT_SID
    recordings = RecordingsServer(account_sid, auth_token, port=recordings_port)
    call = SimulatedCall(HttpTransport(url, public_base_url=public), auth_token,
                         from_=from_, to=to, account_sid=account_sid, recordings=recordings,
                         queues=SimulatedQueues())
    steps = _read_script(Path(script)) if script else None
    shown, announced = 0, False
    if recordings_port or any(s.kind in ("say", "say_audio") for s in steps or ()):
        recordings.start()

    def show() -> None:
        nonlocal shown, announced
        if recordings.started and not announced:
            announced = True
            click.echo(f"Twilio API stand-in: {recordings.base_url} (the server needs "
                       f"TWILIO_API_BASE_URL={recordings.base_url} "
                       f"TWILIO_ACCOUNT_SID={account_sid})", err=True)
        for moment in call.transcript[shown:]:
            click.echo(str(moment))
        shown = len(call.transcript)

    try:
        if steps is None:
            _interactive(call, show, voice)
        else:
            _scripted(call, steps, str(script), show, voice)
    except (SimulatorError, TransportError) as exc:
        show()
        raise click.ClickException(str(exc)) from None
    finally:
        recordings.close()
    show()
    click.echo(f"call {call.call_sid} ended: {call.status}, {int(call.elapsed)}s, "
               f"{call.request_count} requests", err=True)


def _interactive(call: SimulatedCall, show: object, voice: str = "en") -> None:
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
            if call.waiting_for == "queue":
                _on_hold(call)
                continue
            what = "Enter: leave a message, s TEXT: speak" if call.waiting_for == "record" \
                else "keys (Enter: silence, s TEXT: speak"
            keys = click.prompt(f"{what}, h: hang up)", default="", show_default=False).strip()
        except click.Abort:  # Ctrl-C / end of input: the caller hangs up
            click.echo()
            call.hangup()
            break
        try:
            if keys.lower() in ("h", "hangup", "q"):
                call.hangup()
            elif keys.lower().startswith("s ") and _speech_gather(call):
                call.speak(keys[2:].strip())
            elif keys.lower().startswith("s "):
                call.say(keys[2:].strip(), voice)  # a recorded answer, fetched by the server
            elif call.waiting_for == "record":
                call.record()
            elif keys:
                call.press(keys)
            else:
                call.silence()
        except (ValueError, SimulatorError) as exc:
            if call.waiting_for is None and not call.ended:
                raise  # the server failed mid-request: the call cannot go on
            click.echo(f"  {exc}")  # keys that are not keys, speech at a keys-only prompt


def _on_hold(call: SimulatedCall) -> None:
    """In a queue: hold on, press a key (a call back offer), be taken by an agent, or give
    up."""
    answer = click.prompt("on hold: Enter: wait 60 s, w SECONDS: wait, p KEYS: press, "
                          "a SECONDS: an agent takes you for that long, h: hang up",
                          default="", show_default=False).strip().lower()
    if answer.startswith("h"):
        call.hangup()
        return
    if answer.startswith("p"):
        try:
            call.press(answer[1:].strip())
        except (SimulatorError, ValueError) as exc:
            click.echo(f"  {exc}")
        return
    seconds = answer[1:].strip() if answer[:1] in ("w", "a") else ""
    amount = float(seconds) if seconds.replace(".", "", 1).isdigit() else 60.0
    if answer.startswith("a"):
        call.taken_by_agent(amount)
    else:
        call.wait(amount)


def _speech_gather(call: SimulatedCall) -> bool:
    """True at a <Gather input="speech">, where Twilio itself transcribes."""
    pending = call._pending
    return call.waiting_for == "input" and "speech" in getattr(pending, "input", "")


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
            steps.append(read_step(item, line, path.parent))
        except ValueError as exc:
            problems.append(f"{path}:{line}: {exc}")
    if problems:
        raise click.ClickException("\n".join(problems))
    return steps


def _scripted(call: SimulatedCall, steps: list[Step], file: str, show: object,
              voice: str = "en") -> None:
    call.dial()
    for step in steps:
        show()  # type: ignore[operator]
        try:
            run_step(call, step, voice)
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
