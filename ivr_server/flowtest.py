"""Flow tests: scripted calls through the real server, in-process, so flow edits are tested in CI.

A NAME.test.yaml file next to a flow lists calls (a time, a caller, stubbed CRM
answers) and steps (hear, press, silence, transferred_to, agent_hears, ...). Each
call runs through create_app() and the caller simulator, exactly as Twilio would
drive it; a failing step is reported as file:line so ops know what to edit.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import shutil
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import select

from flows.actions import HttpRequest
from flows.errors import FlowLoadError, Problem
from flows.events import LookupDone
from flows.loader import Flow, load_flow_file
from flows.yaml_source import Path as YPath
from flows.yaml_source import line_for, parse_with_lines

from .config import Config
from .simulator import InProcessTransport, RecordingsServer, SimulatedCall, new_sid
from .simulator.queues import SimulatedQueues
from .simulator.script import Step, StepFailed, finish, read_step, run_step

BASE_URL = "https://flowtest.invalid"
TEST_KEYS = {"name", "at", "from", "to", "lookups", "steps", "outcome", "settings"}
LOOKUP_KEYS = {"status", "json", "fail"}
SPOKEN_STEPS = ("say", "say_audio")


@dataclass
class FlowTest:
    name: str
    line: int
    at: dt.datetime
    from_: str
    to: str | None
    lookups: dict[str, dict[str, Any]]
    steps: list[Step]
    settings: dict[str, Any]
    outcome: str | None = None
    outcome_line: int = 0


@dataclass
class TestFile:
    path: Path
    flow: Flow
    tests: list[FlowTest] = field(default_factory=list)
    speech_model: Path | None = None  # speech_model: PATH, relative to the test file


# -- reading test files ----------------------------------------------------------------------


def load_test_file(path: Path) -> TestFile:
    """Parse and check a test file and the flow it names; FlowLoadError lists every problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowLoadError([Problem(file, 1, f"cannot read the file: {exc}")]) from None
    data, lines = parse_with_lines(text, file)
    problems: list[Problem] = []

    def bad(loc: YPath, message: str) -> None:
        problems.append(Problem(file, line_for(lines, loc), message))

    if not isinstance(data, dict) or not isinstance(data.get("tests"), list) \
            or not isinstance(data.get("flow"), str):
        raise FlowLoadError([Problem(file, 1, "a flow test file needs flow: NAME and a list "
                                              "of tests:")])
    for key in sorted(set(data) - {"flow", "tests", "settings", "speech_model"}, key=str):
        bad((key,), f"unknown key {key!r} (expected flow, tests, settings, speech_model)")
    flow = _find_flow(path, data["flow"], lines)
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        bad(("settings",), "settings: is a mapping of NAME: value")
        settings = {}
    out = TestFile(path, flow)
    model = data.get("speech_model")
    if model is not None and not isinstance(model, str):
        bad(("speech_model",), "speech_model: is the path of a vosk model folder")
    elif model:
        out.speech_model = (path.parent / model).resolve()
        if not out.speech_model.is_dir():
            bad(("speech_model",), f"speech_model: no folder {str(out.speech_model)!r}")
    for i, raw in enumerate(data["tests"]):
        test = _read_test(raw, ("tests", i), flow, settings, bad, lines, path.parent)
        if test is not None:
            out.tests.append(test)
    if problems:
        raise FlowLoadError(problems)
    return out


def _find_flow(path: Path, name: str, lines: dict[YPath, int]) -> Flow:
    line = line_for(lines, ("flow",))
    candidates = [path.parent / name] if name.endswith((".yaml", ".yml")) else sorted(
        p for p in path.parent.glob("*.yaml") if not p.name.endswith(".test.yaml"))
    broken: list[Problem] = []
    for candidate in candidates:
        try:
            flow = load_flow_file(candidate)
        except FlowLoadError as exc:
            broken += exc.problems
            continue
        if flow.name == name or candidate.name == name:
            return flow
    raise FlowLoadError([Problem(str(path), line, f"no valid flow {name!r} next to this file"),
                         *broken])


def _mapping(value: Any, loc: YPath, bad: Any) -> dict[str, Any]:
    if value is None or isinstance(value, dict):
        return value or {}
    bad(loc, "settings: is a mapping of NAME: value")
    return {}


def _read_test(raw: Any, loc: YPath, flow: Flow, file_settings: dict[str, Any], bad: Any,
               lines: dict[YPath, int], folder: Path) -> FlowTest | None:
    if not isinstance(raw, dict) or not raw.get("name") or not isinstance(raw.get("steps"), list):
        bad(loc, "a test needs a name and a list of steps")
        return None
    for key in sorted(set(raw) - TEST_KEYS, key=str):
        bad(loc + (key,), f"unknown key {key!r} (expected {', '.join(sorted(TEST_KEYS))})")
    zone = ZoneInfo(flow.model.timezone)
    at = raw.get("at", dt.datetime.now(dt.UTC))
    try:
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at)
        if not isinstance(at, dt.datetime):
            raise ValueError
        at = at if at.tzinfo else at.replace(tzinfo=zone)
    except ValueError:
        bad(loc + ("at",), f"at: {raw.get('at')!r} is not a date and time like 2026-11-24T10:00")
        at = dt.datetime.now(dt.UTC)
    http_nodes = {n for n, node in flow.model.nodes.items() if node.type == "http"}
    lookups = raw.get("lookups") or {}
    for node, spec in lookups.items() if isinstance(lookups, dict) else ():
        if node not in http_nodes:
            bad(loc + ("lookups", node), f"lookups: {node!r} is not an http node of flow "
                                         f"{flow.name!r} ({', '.join(sorted(http_nodes))})")
        elif not isinstance(spec, dict) or not spec or set(spec) - LOOKUP_KEYS:
            bad(loc + ("lookups", node), "a lookup answer is { status: 200, json: {...} } or "
                                         "{ fail: timeout }")
    steps: list[Step] = []
    for j, item in enumerate(raw["steps"]):
        try:
            steps.append(read_step(item, line_for(lines, loc + ("steps", j)), folder))
        except ValueError as exc:
            bad(loc + ("steps", j), str(exc))
    outcome = raw.get("outcome")
    return FlowTest(str(raw["name"]), line_for(lines, loc), at,
                    str(raw.get("from", "+14155550100")),
                    str(raw["to"]) if raw.get("to") else None,
                    lookups if isinstance(lookups, dict) else {}, steps,
                    {**file_settings, **_mapping(raw.get("settings"), loc + ("settings",), bad)},
                    str(outcome) if outcome else None, line_for(lines, loc + ("outcome",)))


# -- running ----------------------------------------------------------------------------------


def run_flow_tests(paths: list[str], config: Config, out: TextIO | None = None) -> int:
    """Run every test in `paths` (files or folders of *.test.yaml); returns the failure count.

    Prints each failure as file:line and a last line 'N passed, M failed' to `out`
    (default: sys.stdout at call time)."""
    out = out or sys.stdout
    files = _test_files(paths)
    passed = failed = 0
    if not files:
        print(f"no flow test files (*.test.yaml) in {', '.join(paths) or '.'}", file=out)
        return 1
    with _Harness(config) as harness:
        for path in files:
            try:
                test_file = load_test_file(path)
            except FlowLoadError as exc:
                for problem in exc.problems:
                    print(str(problem), file=out)
                failed += max(1, len(exc.problems))
                continue
            for test in test_file.tests:
                problem = harness.run(test_file, test)
                if problem is None:
                    passed += 1
                else:
                    failed += 1
                    print(problem, file=out)
    print(f"{passed} passed, {failed} failed", file=out)
    return failed


def _test_files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        found += sorted(p.glob("*.test.yaml")) if p.is_dir() else [p]
    return found


class _Clock:
    """The test's wall-clock time, moving on as the simulated call does."""

    def __init__(self, start: dt.datetime):
        self.start, self.call = start, None

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.call.elapsed if self.call else 0)


class _Harness:
    """Redis, a migrated SQLite template and a signing token shared by one run's tests."""

    def __init__(self, config: Config):
        self.config = config
        self.stack = ExitStack()

    def __enter__(self) -> _Harness:
        from . import db
        from .redis_conn import EmbeddedRedis, connect

        self.tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="flowtest-")))
        url = self.config.redis.url
        if not url:  # no Redis configured: a private embedded one for this run
            embedded = EmbeddedRedis(self.tmp / "redis")
            self.stack.callback(embedded.shutdown)
            url = embedded.url
        self.redis = connect(url)
        self.template = self.tmp / "template.sqlite3"
        db.upgrade(f"sqlite:///{self.template}")
        self.token = secrets.token_hex(16)
        self.account_sid = new_sid("AC")
        # Twilio's recordings API for spoken answers; started when a test speaks
        self.recordings = RecordingsServer(self.account_sid, self.token)
        self.stack.callback(self.recordings.close)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def run(self, test_file: TestFile, test: FlowTest) -> str | None:
        """Run one test; None when it passes, else the report naming file:line."""
        from . import create_app

        spoken = next((s for s in test.steps if s.kind in SPOKEN_STEPS), None)
        model = test_file.speech_model or self.config.speech_model_path
        if spoken is not None and model is None:
            return (f"{test_file.path}:{spoken.line}: test {test.name!r}: {spoken.kind} needs a "
                    "speech model: set speech_model: PATH in the test file or [speech] "
                    "model_path in the config")
        run_id = secrets.token_hex(6)
        database = self.tmp / f"{run_id}.sqlite3"
        shutil.copyfile(self.template, database)
        config = self._config(test_file, test, run_id, database, model, spoken is not None)
        clock = _Clock(test.at)
        logs = _LogCapture()
        services = None
        call: SimulatedCall | None = None
        try:
            with logs:
                app = create_app(config, clock=clock, lookup=_stub_lookups(test.lookups),
                                 redis_client=self.redis)
                services = app.extensions["ivr"]
                to = test.to or next(iter(config.flows.numbers), "+15005550006")
                transport = InProcessTransport(app, BASE_URL)
                self.stack.callback(transport.close)  # its websocket server, if streams ran
                call = SimulatedCall(transport, self.token,
                                     from_=test.from_, to=to, account_sid=self.account_sid,
                                     recordings=self.recordings, queues=SimulatedQueues())
                clock.call = call
                _play(call, test, test_file.flow.model.language.split("-")[0].lower())
                if test.outcome:
                    got = _outcome(services, call.call_sid)
                    if got != test.outcome:
                        raise StepFailed(test.outcome_line, f"expected outcome {test.outcome!r}; "
                                                            f"the call log says {got!r}")
            return None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a report line
            line = exc.line if isinstance(exc, StepFailed) else test.line
            message = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
            transcript = call.format_transcript(last=15) if call else "(no call)"
            return (f"{test_file.path}:{line}: test {test.name!r}: {message}" + logs.report()
                    + "\n    the call:\n      " + transcript.replace("\n", "\n      "))
        finally:
            if services is not None:
                services.session_factory.kw["bind"].dispose()
            for key in self.redis.scan_iter(match=f"{config.redis.key_prefix}*"):
                self.redis.delete(key)

    def _config(self, test_file: TestFile, test: FlowTest, run_id: str, database: Path,
                model: Path | None, spoken: bool) -> Config:
        c = self.config
        if model is not None:
            c = c.with_section("speech", model_path=str(model))
        if spoken:  # the server fetches the caller's answers from the stand-in API
            c = c.with_section("twilio", account_sid=self.account_sid,
                               api_base_url=self.recordings.base_url)
        c = c.with_section("server", public_base_url=BASE_URL, trust_proxy=False,
                           instance_path=str(self.tmp / run_id))
        c = c.with_section("twilio", auth_token=self.token, dev_skip_signatures=False)
        c = c.with_section("redis", key_prefix=f"flowtest:{run_id}:")
        c = c.with_section("database", url=f"sqlite:///{database}")
        numbers = {n: f for n, f in c.flows.numbers.items() if f == test_file.flow.name}
        return c.with_section("flows", directory=str(Path(test_file.flow.file).parent.resolve()),
                              default=test_file.flow.name, numbers=numbers,
                              settings={**c.flows.settings, **test.settings})


def _stub_lookups(answers: dict[str, dict[str, Any]]) -> Any:
    """CRMs are not reachable from CI: listed nodes get their scripted answer, others fail."""

    def lookup(request: HttpRequest) -> LookupDone:
        spec = answers.get(request.node)
        if spec is None:
            return LookupDone(ok=False, error=f"no answer scripted for {request.node!r}",
                              elapsed_ms=0.0)
        if spec.get("fail"):
            return LookupDone(ok=False, error=str(spec["fail"]), elapsed_ms=0.0)
        status = int(spec.get("status", 200))
        ok = 200 <= status < 300
        return LookupDone(ok=ok, status=status, data=spec.get("json"), elapsed_ms=0.0,
                          error=None if ok else f"HTTP {status}")

    return lookup


def _play(call: SimulatedCall, test: FlowTest, voice: str = "en") -> None:
    """Dial, run the steps, then finish the call the way a caller would (hang up)."""
    line = test.line
    try:
        call.dial()
        for step in test.steps:
            line = step.line
            run_step(call, step, voice)
        line = test.outcome_line or line
        finish(call)
    except StepFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - the server misbehaved at this step
        raise StepFailed(line, f"{type(exc).__name__}: {exc}") from None


def _outcome(services: Any, call_sid: str) -> str | None:
    from .models import Call

    services.writer.drain()  # the call log is written behind the webhooks
    with services.session_factory() as db:
        return db.scalar(select(Call.outcome).where(Call.call_sid == call_sid))


class _LogCapture(logging.Handler):
    """Keeps the server's errors during a test to explain a failure (the safe path, a 403)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.logger = logging.getLogger("ivr_server")

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.name == "ivr_server.voice":
            self.lines.append(f"{record.levelname} {record.getMessage()}".splitlines()[0])

    def __enter__(self) -> _LogCapture:
        self.saved = self.logger.propagate
        self.logger.addHandler(self)
        self.logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.propagate = self.saved

    def report(self) -> str:
        return "".join(f"\n    server: {line}" for line in self.lines[:5])
