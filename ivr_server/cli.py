"""The `ivr` command: serve, db, flows (check, graph, test) and call."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from flows.errors import FlowLoadError
from flows.loader import Flow, load_flow_file

from .config import Config, ConfigError, load_config


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="config.toml to use (default: $IVR_CONFIG, else ./config.toml)")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """IVR and callback server for Twilio."""
    try:
        ctx.obj = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


# -- serve ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="interface to listen on (default from config)")
@click.option("--port", type=int, default=None, help="port (default from config)")
@click.option("--production", is_flag=True,
              help="run under gunicorn (gthread workers, sized by [server] workers/threads)")
@click.pass_obj
def serve(config: Config, host: str | None, port: int | None, production: bool = False) -> None:
    """Run the server; with no REDIS_URL/DATABASE_URL it runs on an embedded Redis and SQLite."""
    from werkzeug.serving import run_simple

    from . import create_app, db
    from .redis_conn import EmbeddedRedis

    _setup_logging(config)
    host = host or config.server.host
    port = port or config.server.port
    if production:
        from .production import ProductionError, serve_production

        try:
            serve_production(config, host, port)
        except ProductionError as exc:
            raise click.ClickException(str(exc)) from None
        return
    embedded = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if not config.redis.url:
            embedded = EmbeddedRedis(config.instance_dir)
            config = config.with_section("redis", url=embedded.url)
        if config.database_url.startswith("sqlite"):
            db.upgrade(config.database_url)
        elif db.current_revision(config.database_url) is None:
            raise click.ClickException("the database has no schema yet: run `ivr db upgrade`")
        app = create_app(config)
        services = app.extensions["ivr"]
        services.start_background()
        click.echo(_banner(app, config, host, port, embedded))
        try:
            run_simple(host, port, app, threaded=True, use_reloader=False)
        finally:
            services.close()
    finally:
        if embedded is not None:
            embedded.shutdown()


def _banner(app, config: Config, host: str, port: int, embedded) -> str:  # noqa: ANN001
    from . import dev_token_path

    services = app.extensions["ivr"]
    base = config.server.public_base_url.rstrip("/") or f"http://{host}:{port}"
    flows = services.registry.live()
    lines = [
        f"IVR server listening on http://{host}:{port}",
        "Paste into your Twilio number's voice configuration (HTTP POST):",
        f"  A call comes in:         {base}/voice/incoming",
        f"  Primary handler fails:   {base}/voice/fallback",
        f"  Call status changes:     {base}/voice/status",
        f"Redis:     {f'embedded redis-server (pid {embedded.pid}) at ' if embedded else ''}"
        f"{config.redis.url}",
        f"Database:  {_hide_password(config.database_url)}",
        f"Flows:     {config.flows_dir}",
    ]
    lines += [f"  {f.name} version {f.version} ({f.file})" for f in flows.values()]
    lines += [f"  REFUSED {p}" for probs in services.registry.problems().values() for p in probs]
    users = app.extensions["ivr_admin"].users.all()
    lines.append(f"Admin pages: http://{host}:{port}/admin/ ("
                 + (f"{len(users)} user(s))" if users else
                    "no users yet: `ivr users create NAME --role admin`)"))
    if config.twilio.dev_skip_signatures:
        lines.append("Signatures: NOT CHECKED (IVR_DEV_SKIP_SIGNATURES is on)")
    elif config.twilio.auth_token:
        lines.append("Signatures: checked with TWILIO_AUTH_TOKEN")
    else:
        lines.append(f"Signatures: checked with a local token ({dev_token_path(config)}); "
                     "`ivr call` uses it. Set TWILIO_AUTH_TOKEN for real Twilio traffic.")
    if not config.server.public_base_url:
        lines.append("Set PUBLIC_BASE_URL to the https URL Twilio reaches (signatures are "
                     "checked against it).")
    return "\n".join(lines)


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url


def _setup_logging(config: Config | None = None) -> None:
    """[logging] format (text or json) and level; numbers masked, lines tagged by CallSid."""
    from .json_logs import setup_logging

    try:
        setup_logging(config.logging if config is not None else None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


# -- db ------------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The call-log database."""


@db_group.command("upgrade")
@click.option("--revision", default="head")
@click.pass_obj
def db_upgrade(config: Config, revision: str) -> None:
    """Apply the database migrations (Alembic)."""
    from . import db

    db.upgrade(config.database_url, revision)
    click.echo(f"database at revision {db.current_revision(config.database_url)}")


# -- flows ---------------------------------------------------------------------------------


@main.group("flows")
def flows_group() -> None:
    """Check, draw and test flow files."""


def flow_files(paths: tuple[str, ...], config: Config) -> list[Path]:
    found: list[Path] = []
    for p in [Path(x) for x in paths] or [config.flows_dir]:
        if p.is_dir():
            found += sorted(f for f in p.glob("*.yaml") if not f.name.endswith(".test.yaml"))
        else:
            found.append(p)
    return found


@flows_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--model", "model_path", type=click.Path(), default=None,
              help="vosk model to check menu synonyms against (default: [speech] model_path)")
@click.pass_obj
def flows_check(config: Config, paths: tuple[str, ...], model_path: str | None) -> None:
    """Report every problem as file:line: message; exit 1 if any file is refused.

    With a speech model, also warn about menu synonyms with words it does not know
    (vosk drops them, so callers could never say that synonym) and about collects that
    listen in a language without digit words."""
    from speech.errors import ModelUnavailable
    from speech.model import SpeechModel

    from .speech_lint import speech_summary, speech_warnings

    files = flow_files(paths, config)
    if not files:
        raise click.ClickException("no flow files found")
    speech_path = Path(model_path) if model_path else config.speech_model_path
    model = SpeechModel(speech_path) if speech_path is not None else None
    if model is not None:
        try:
            model.check()
        except ModelUnavailable as exc:
            click.echo(f"warning: menu synonyms not checked: {exc}", err=True)
            model = None
    refused = 0
    names: dict[str, Path] = {}
    for path in files:
        try:
            flow = load_flow_file(path)
        except FlowLoadError as exc:
            refused += 1
            for problem in exc.problems:
                click.echo(str(problem))
            continue
        for warning in flow.warnings:
            click.echo(str(warning))
        for problem in speech_warnings(flow, model) if model is not None else []:
            click.echo(str(problem))
        if flow.name in names:
            refused += 1
            click.echo(f"{path}:1: flow {flow.name!r} is already defined in {names[flow.name]}")
        else:
            click.echo(f"{path}: ok (flow {flow.name}, version {flow.version}, "
                       f"{speech_summary(flow)})", err=True)
        names[flow.name] = path
    click.echo(f"{len(files)} flow file(s) checked, {refused} refused", err=True)
    if refused:
        sys.exit(1)


@flows_group.command("graph")
@click.argument("flow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid")
@click.pass_obj
def flows_graph(config: Config, flow: str, fmt: str) -> None:
    """Print a Mermaid (default) or Graphviz DOT picture of FLOW (a name or a file)."""
    from flows.graph import to_dot, to_mermaid

    loaded = _find_flow(flow, config)
    click.echo(to_mermaid(loaded) if fmt == "mermaid" else to_dot(loaded))


def _find_flow(name_or_path: str, config: Config) -> Flow:
    path = Path(name_or_path)
    candidates = [path] if path.suffix in (".yaml", ".yml") else flow_files((), config)
    for candidate in candidates:
        try:
            flow = load_flow_file(candidate)
        except FlowLoadError as exc:
            if candidate == path:
                raise click.ClickException(str(exc)) from None
            continue
        if candidate == path or flow.name == name_or_path:
            return flow
    raise click.ClickException(f"no valid flow named {name_or_path!r} in {config.flows_dir}")


def _register_optional() -> None:
    """Commands that live in their own modules."""
    from .cli_agents import agents_group
    from .cli_call import call_command, flows_test_command
    from .cli_callbacks import callbacks_group
    from .cli_recognize import speech_recognize
    from .cli_speech import speech_group
    from .cli_users import users_group
    from .cli_worker import worker_command

    main.add_command(call_command, "call")
    main.add_command(agents_group, "agents")
    main.add_command(callbacks_group, "callbacks")
    main.add_command(worker_command, "worker")
    main.add_command(users_group, "users")
    speech_group.add_command(speech_recognize, "recognize")
    main.add_command(speech_group, "speech")
    flows_group.add_command(flows_test_command, "test")


_register_optional()
