"""Which version of which flow serves a call.

New calls get the newest valid version of a flow file; a call in progress keeps the
version (content hash) it started on, fetched from Redis or SQL if this process never
saw it. A broken edit is refused and logged while the last good version keeps serving.

Across nodes the newest publication wins: each flow has a live pointer in Redis (version
and when it was published: the file's mtime), and a node whose own file is older than the
pointer serves the pointer's version from Redis or SQL. So a publish on one node (the
flows page, or an edited file) reaches every node within `reload_interval`, and a node
restarted with stale files does not roll the cluster back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from flows.errors import FlowError, FlowLoadError
from flows.loader import Flow, load_flow_file, load_flow_text, version_of

from .models import FlowVersion
from .redis_conn import as_text

SOURCE_TTL = 7 * 24 * 3600


class UnknownFlow(FlowError):
    """No live version of the named flow (never loaded, or every version was broken)."""


@dataclass
class _FileState:
    stamp: tuple[float, int]
    flow_name: str | None = None
    problems: tuple[str, ...] = ()
    flow: Flow | None = None  # the file's last good version (kept while an edit is broken)


class FlowRegistry:
    def __init__(self, directory: Path, *, redis_client: redis.Redis,
                 session_factory: sessionmaker, prefix: str, reload_interval: float,
                 logger: logging.Logger | None = None):
        self.directory = directory
        self.redis, self.session_factory, self.prefix = redis_client, session_factory, prefix
        self.reload_interval = reload_interval
        self.log = logger or logging.getLogger(__name__)
        self._live: dict[str, Flow] = {}
        self._versions: dict[tuple[str, str], Flow] = {}
        self._files: dict[Path, _FileState] = {}
        self._checked = 0.0
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def current(self, name: str) -> Flow:
        self.refresh()
        flow = self._live.get(name)
        if flow is None:
            flow = self._latest_stored(name)
            if flow is None:
                raise UnknownFlow(f"no valid version of flow {name!r} in {self.directory}")
        return flow

    def version(self, name: str, version: str) -> Flow:
        flow = self._versions.get((name, version))
        if flow is None:
            flow = self._stored(name, version)
        return flow

    def live(self) -> dict[str, Flow]:
        self.refresh()
        return dict(self._live)

    def loaded(self) -> dict[str, Flow]:
        """The flows this process serves now, without looking for news (no file or Redis
        I/O): what a readiness probe that leaves Redis out may ask."""
        return dict(self._live)

    def problems(self) -> dict[str, tuple[str, ...]]:
        """Files currently refused, with their file:line problems."""
        return {str(p): st.problems for p, st in self._files.items() if st.problems}

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.reload_interval:
            return
        with self._lock:
            if not force and now - self._checked < self.reload_interval:
                return
            for path in sorted(self.directory.glob("*.yaml")):
                if path.name.endswith(".test.yaml"):
                    continue
                self._refresh_file(path)
            self._follow_pointers()
            # Only now: a thread that skips the check must find the flows already loaded.
            self._checked = time.monotonic()

    # -- for the admin pages and publishing ------------------------------------------------

    def live_version(self, name: str) -> str | None:
        """The version new calls get, or None when the flow has no valid version."""
        try:
            return self.current(name).version
        except UnknownFlow:
            return None

    def file_of(self, name: str) -> Path | None:
        """The file in the flows directory that defines `name`: the one serving it, else a
        refused file that did, else the newest stored path still in the directory (a server
        started with the file broken never parsed it)."""
        self.refresh()
        states = list(self._files.items())
        for want_clean in (True, False):
            for path, st in states:
                if st.flow_name == name and (not st.problems or not want_clean):
                    return path
        directory = self.directory.resolve()
        for row in self.history(name):
            path = Path(row.path)
            if path.exists() and path.resolve().parent == directory:
                return path
        return None

    def history(self, name: str, limit: int = 100) -> list[FlowVersion]:
        """Every stored version of a flow, newest first (empty if the database is down)."""
        try:
            with self.session_factory() as db:
                rows = list(db.scalars(select(FlowVersion).where(FlowVersion.flow == name)
                                       .order_by(FlowVersion.id.desc()).limit(limit)))
                db.expunge_all()
                return rows
        except SQLAlchemyError:
            self.log.warning("could not read the history of flow %s", name)
            return []

    def reload(self, path: Path) -> None:
        """Re-read one file now, even if its size and mtime look unchanged (a publish that
        lands within the filesystem's timestamp granularity must not be missed)."""
        with self._lock:
            known = self._files.get(path)
            if known is not None:
                known.stamp = (-1.0, -1)
            self._refresh_file(path)
            self._follow_pointers()

    # -- loading --------------------------------------------------------------------------

    def _refresh_file(self, path: Path) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        stamp = (st.st_mtime, st.st_size)
        known = self._files.get(path)
        if known and known.stamp == stamp:
            return
        try:
            flow = load_flow_file(path)
        except FlowLoadError as exc:
            problems = tuple(str(p) for p in exc.problems)
            self._files[path] = _FileState(stamp, known.flow_name if known else None, problems)
            self.log.error("flow file refused, the last good version keeps serving:\n%s",
                           "\n".join(problems))
            return
        owner = next((p for p, s in self._files.items()
                      if s.flow_name == flow.name and p != path and not s.problems), None)
        if owner is not None:
            msg = f"{path}:1: flow {flow.name!r} is already defined in {owner}"
            self._files[path] = _FileState(stamp, None, (msg,))
            self.log.error(msg)
            return
        self._files[path] = _FileState(stamp, flow.name, flow=flow)
        for warning in flow.warnings:
            self.log.warning("%s", warning)
        previous = self._live.get(flow.name)
        self._remember(flow)
        self._live[flow.name] = flow
        if previous is None or previous.version != flow.version:
            self.log.info("flow %s is live at version %s (%s)", flow.name, flow.version, path)

    def _remember(self, flow: Flow) -> None:
        self._versions[(flow.name, flow.version)] = flow
        try:
            self.redis.set(self._key(flow.name, flow.version), flow.source, ex=SOURCE_TTL)
        except redis.RedisError:
            self.log.warning("could not copy flow %s@%s to redis", flow.name, flow.version)
        try:
            with self.session_factory.begin() as db:
                exists = db.scalar(select(FlowVersion.id).where(
                    FlowVersion.flow == flow.name, FlowVersion.version == flow.version))
                if exists is None:
                    db.add(FlowVersion(flow=flow.name, version=flow.version, source=flow.source,
                                       path=flow.file))
        except IntegrityError:
            pass  # another process stored the same version a moment earlier
        except SQLAlchemyError:
            self.log.warning("could not store flow %s@%s in the database", flow.name,
                             flow.version)

    def _key(self, name: str, version: str) -> str:
        return f"{self.prefix}flowsrc:{name}:{version}"

    # -- the cluster's live pointer -------------------------------------------------------

    def _follow_pointers(self) -> None:
        """Serve, per flow, the newer of this node's file and the cluster's live pointer."""
        key = f"{self.prefix}flowlive"
        try:
            pointers = self.redis.hgetall(key)
        except redis.RedisError:
            return  # files alone until Redis is back
        newest: dict[str, tuple[float, Flow]] = {}
        for st in self._files.values():
            if st.flow is not None and not (st.flow.name in newest
                                            and newest[st.flow.name][0] >= st.stamp[0]):
                newest[st.flow.name] = (st.stamp[0], st.flow)
        for name in set(newest) | {as_text(k) for k in pointers}:
            pointer = _pointer(pointers.get(name) or pointers.get(name.encode()))
            mine = newest.get(name)
            if mine is not None and (pointer is None or mine[0] > pointer[1]):
                if pointer is None or pointer[0] != mine[1].version:
                    self._publish_pointer(key, name, mine[1].version, mine[0])
                self._set_live(mine[1], "its file")
            elif pointer is not None:
                live = self._live.get(name)
                if live is not None and live.version == pointer[0]:
                    continue
                try:
                    self._set_live(self.version(name, pointer[0]), "another node")
                except FlowError:
                    self.log.warning("flow %s: version %s published elsewhere is not stored; "
                                     "serving this node's version", name, pointer[0])

    def _publish_pointer(self, key: str, name: str, version: str, at: float) -> None:
        try:
            self.redis.hset(key, name, json.dumps({"version": version, "at": at}))
        except redis.RedisError:
            self.log.warning("could not publish flow %s@%s to the other nodes", name, version)

    def _set_live(self, flow: Flow, source: str) -> None:
        previous = self._live.get(flow.name)
        self._live[flow.name] = flow
        if previous is not None and previous.version != flow.version:
            self.log.info("flow %s is live at version %s (from %s)", flow.name, flow.version,
                          source)

    def _stored(self, name: str, version: str) -> Flow:
        source: str | None = None
        try:
            source = self.redis.get(self._key(name, version))
        except redis.RedisError:
            source = None
        if source is None:
            try:
                with self.session_factory() as db:
                    source = db.scalar(select(FlowVersion.source).where(
                        FlowVersion.flow == name, FlowVersion.version == version))
            except SQLAlchemyError:
                source = None
        if source is None or version_of(source) != version:
            raise UnknownFlow(f"flow {name!r} version {version} is not stored anywhere")
        flow = load_flow_text(source, f"{name}@{version}")
        self._versions[(name, version)] = flow
        return flow

    def _latest_stored(self, name: str) -> Flow | None:
        """At start-up with a broken file: the newest version that was ever good."""
        try:
            with self.session_factory() as db:
                row = db.execute(select(FlowVersion.version, FlowVersion.source)
                                 .where(FlowVersion.flow == name)
                                 .order_by(FlowVersion.id.desc()).limit(1)).first()
        except SQLAlchemyError:
            return None
        if row is None:
            return None
        flow = load_flow_text(row.source, f"{name}@{row.version}")
        self._versions[(name, flow.version)] = flow
        self._live[name] = flow
        self.log.warning("flow %s: serving stored version %s (its file is broken)", name,
                         flow.version)
        return flow


def _pointer(raw: bytes | str | None) -> tuple[str, float] | None:
    """(version, published at) from a pointer's JSON; None when absent or unreadable."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return str(data["version"]), float(data["at"])
    except (ValueError, KeyError, TypeError):
        return None
