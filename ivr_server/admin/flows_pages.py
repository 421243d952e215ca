"""Flows (ops role): what is live, each flow's history, checks, graph and diffs, and
publishing or rolling back a version from the browser.

Publishing goes through flow_publish (the same checks as `ivr flows check`, an atomic
write of the flow's file, an immediate reload), so the web never bypasses the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from flows.errors import Problem
from flows.graph import to_mermaid
from flows.loader import Flow

from ..flow_publish import (
    FlowPublishError,
    Published,
    StalePublish,
    check,
    normalise,
    publish,
    rollback,
)
from ..models import AuditEvent
from ..registry import FlowRegistry, UnknownFlow
from .auth import current_user, require_role
from .context import admin_services
from .flow_diff import diff_sources
from .roles import OPS

bp = Blueprint("admin_flows", __name__, url_prefix="/admin/flows")
bp.before_request(require_role(OPS))

PUBLISH_ACTIONS = ("flow_published", "flow_rolled_back")
MERMAID_JS = "vendor/mermaid.min.js"


@dataclass
class VersionRow:
    """One stored version of a flow, with who put it live on the web (if anyone did)."""

    version: str
    created_at: datetime | None
    path: str
    live: bool
    events: list[AuditEvent] = field(default_factory=list)


# -- reading ------------------------------------------------------------------------------

def _registry() -> FlowRegistry:
    return admin_services().ivr.registry


def _live_flow(name: str) -> Flow:
    try:
        return _registry().current(name)
    except UnknownFlow:
        abort(404, description=f"There is no flow named {name!r}.")


def _publications(name: str) -> dict[str, list[AuditEvent]]:
    """Audit entries of web publications and rollbacks of a flow, by version, newest first."""
    audit = admin_services().audit
    events = [e for action in PUBLISH_ACTIONS
              for e in audit.recent(action=action, target=name, limit=200)]
    by_version: dict[str, list[AuditEvent]] = {}
    for event in sorted(events, key=lambda e: e.id, reverse=True):
        version = (event.data or {}).get("version")
        if isinstance(version, str):
            by_version.setdefault(version, []).append(event)
    return by_version


def _history(name: str, live: Flow) -> list[VersionRow]:
    published = _publications(name)
    rows = [VersionRow(r.version, r.created_at, r.path, r.version == live.version,
                       published.get(r.version, [])) for r in _registry().history(name)]
    if not any(r.live for r in rows):  # the database is down, or lost the row
        rows.insert(0, VersionRow(live.version, None, live.file, True,
                                  published.get(live.version, [])))
    return rows


def _file_problems(registry: FlowRegistry, path: Path | None) -> tuple[str, ...]:
    return registry.problems().get(str(path), ()) if path is not None else ()


def _shown_path(path: Path | str | None) -> str:
    """A file as ops know it: relative to the flows directory's parent when inside it."""
    if path is None:
        return "-"
    path = Path(path)
    try:
        return str(path.resolve().relative_to(_registry().directory.resolve().parent))
    except ValueError:
        return str(path)


def _mermaid_script() -> str | None:
    """The vendored Mermaid, if present; without it the page shows the diagram's text."""
    assets = admin_services().assets
    if assets is not None:
        present = bool(getattr(assets, "mermaid", False))
    else:  # no start-up survey of the vendored files: look now
        folder = current_app.blueprints["admin"].static_folder
        present = bool(folder) and (Path(folder or ".") / MERMAID_JS).is_file()
    return url_for("admin.static", filename=MERMAID_JS) if present else None


def _graph(flow: Flow) -> dict[str, Any]:
    return {"mermaid": to_mermaid(flow), "mermaid_js": _mermaid_script()}


def _load_version(name: str, version: str) -> Flow:
    try:
        return _registry().version(name, version)
    except UnknownFlow:
        abort(404, description=f"Flow {name!r} has no stored version {version!r}.")


def _default_pair(rows: list[VersionRow]) -> tuple[str, str]:
    """Previous vs live: the version stored just before the live one, else any other."""
    live_at = next((i for i, r in enumerate(rows) if r.live), 0)
    live = rows[live_at].version
    older = [r.version for r in rows[live_at + 1:]] or [r.version for r in rows if not r.live]
    return (older[0] if older else live), live


# -- pages --------------------------------------------------------------------------------

@bp.get("/")
def flows() -> Any:
    registry = _registry()
    live = registry.live()
    published = {name: _publications(name) for name in live}
    entries = []
    for name, flow in sorted(live.items()):
        path = registry.file_of(name)
        stored = next((r for r in registry.history(name) if r.version == flow.version), None)
        events = published[name].get(flow.version, [])
        entries.append({"name": name, "flow": flow, "file": _shown_path(path or flow.file),
                        "changed_at": stored.created_at if stored else None,
                        "event": events[0] if events else None,
                        "problems": _file_problems(registry, path)})
    refused = [{"file": _shown_path(path), "problems": problems}
               for path, problems in sorted(registry.problems().items())]
    return render_template("admin/flows.html", entries=entries, refused=refused,
                           directory=registry.directory)


@bp.get("/<name>")
def flow(name: str) -> Any:
    registry = _registry()
    live = _live_flow(name)
    shown = live
    wanted = request.args.get("version")
    if wanted and wanted != live.version:
        shown = _load_version(name, wanted)
    rows = _history(name, live)
    path = registry.file_of(name)
    return render_template("admin/flow.html", name=name, live=live, shown=shown, rows=rows,
                           file=_shown_path(path or live.file),
                           problems=_file_problems(registry, path),
                           graph=_graph(shown), pair=_default_pair(rows))


@bp.get("/<name>/diff")
def diff(name: str) -> Any:
    live = _live_flow(name)
    rows = _history(name, live)
    default_a, default_b = _default_pair(rows)
    a = request.args.get("a") or default_a
    b = request.args.get("b") or default_b
    old, new = _load_version(name, a), _load_version(name, b)
    return render_template("admin/flow_diff.html", name=name, live=live, rows=rows,
                           a=a, b=b, diff=diff_sources(old.source, new.source),
                           pair=(a, b))


@bp.get("/<name>/publish")
def publish_form(name: str) -> Any:
    live = _live_flow(name)
    return _publish_page(name, live, source=live.source, base=live.version)


@bp.post("/<name>/publish")
def publish_post(name: str) -> Any:
    registry = _registry()
    live = _live_flow(name)
    base = request.form.get("base") or ""
    try:
        source = _submitted_source(name)
        if not base:  # never overwrite blindly: the form says which version it edits
            raise FlowPublishError(name, [], f"flow {name!r} was not published: the form "
                                             "does not say which version it was based on")
    except FlowPublishError as exc:
        return _publish_page(name, live, source=request.form.get("source", ""), base=base,
                             error=exc, status=422)
    if request.form.get("action") == "check":
        try:
            candidate = check(registry, name, source)
        except FlowPublishError as exc:
            return _publish_page(name, live, source=source, base=base, error=exc, status=422)
        return _publish_page(name, live, source=source, base=base, candidate=candidate)
    try:
        done = publish(registry, name, source, base=base)
    except StalePublish as exc:
        # Show what the other person changed; the form is now based on their version,
        # so publishing again is a deliberate choice made after seeing it.
        theirs = _registry().current(name)
        return _publish_page(name, theirs, source=source, base=theirs.version, error=exc,
                             status=409, since=_since(name, exc.base, theirs))
    except FlowPublishError as exc:
        return _publish_page(name, live, source=source, base=base, error=exc, status=422)
    return _done(name, done, "flow_published")


@bp.post("/<name>/rollback")
def rollback_post(name: str) -> Any:
    _live_flow(name)
    version, base = request.form.get("version", ""), request.form.get("base", "")
    try:
        if not base:
            raise FlowPublishError(name, [], f"flow {name!r} was not rolled back: the form "
                                             "does not say which version was live")
        done = rollback(_registry(), name, version, base=base)
    except FlowPublishError as exc:
        flash(str(exc), "error")
        return redirect(url_for(".flow", name=name), code=303)
    return _done(name, done, "flow_rolled_back")


# -- helpers ------------------------------------------------------------------------------

def _submitted_source(name: str) -> str:
    """The uploaded .yaml file if one was chosen, else the textarea."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read()
        try:
            return normalise(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise FlowPublishError(name, [Problem(upload.filename, 1, "the uploaded file is "
                                                                      "not UTF-8 text")]) from None
    return normalise(request.form.get("source", ""))


def _since(name: str, base: str, live: Flow) -> Any:
    """What changed between the version an editor started from and the live one."""
    try:
        old = _registry().version(name, base).source
    except UnknownFlow:
        return None
    return diff_sources(old, live.source)


def _publish_page(name: str, live: Flow, *, source: str, base: str,
                  error: FlowPublishError | None = None, candidate: Flow | None = None,
                  status: int = 200, since: Any = None) -> Any:
    changes = diff_sources(live.source, candidate.source) if candidate else None
    return render_template("admin/flow_publish.html", name=name, live=live, source=source,
                           base=base, error=error, stale=isinstance(error, StalePublish),
                           candidate=candidate, changes=changes,
                           since=since, graph=_graph(candidate) if candidate else None,
                           file=_shown_path(_registry().file_of(name) or live.file)), status


def _done(name: str, done: Published, action: str) -> Any:
    admin_services().audit.record(current_user().username, action, name,
                                  version=done.flow.version, previous=done.previous)
    flash(f"{name} is live at version {done.flow.version}.", "success")
    return redirect(url_for(".flow", name=name), code=303)
