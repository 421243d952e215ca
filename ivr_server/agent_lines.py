"""What agents' lines are told about callers, kept in Redis beside each queue's live state.

Two things, both per queue. A brief reservation: the caller an agent's line was told it
would get, made only when no other line can race it for the head of the line (at most one
agent on duty, no other line holding an unexpired reservation), in one Lua script so two
web processes cannot both decide they are alone. A screen pop: the pair Twilio actually
connected (caller and agent line), with who the caller is and what the flow collected, for
agents' desktops; it goes when the caller's queue result or call end comes, and a pair
whose end was never reported is dropped after `stale_after`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import redis

from .redis_conn import as_text

# KEYS: briefed hash (agent line -> "until caller"), waiting zset, agents-on-duty count.
# ARGV: agent line, now, until, key ttl (whole seconds).
_BRIEF = """
local briefed, waiting, agents = KEYS[1], KEYS[2], KEYS[3]
local agent, now = ARGV[1], tonumber(ARGV[2])
redis.call('HDEL', briefed, agent)
if (tonumber(redis.call('GET', agents)) or 0) > 1 then return false end
local held = redis.call('HGETALL', briefed)
for i = 1, #held, 2 do
  local untill = tonumber(string.match(held[i + 1], '^%S+'))
  if untill and untill > now then return false end
  redis.call('HDEL', briefed, held[i])
end
local head = redis.call('ZRANGE', waiting, 0, 0)[1]
if not head then return false end
redis.call('HSET', briefed, agent, ARGV[3] .. ' ' .. head)
redis.call('EXPIRE', briefed, ARGV[4])
return head
"""


@dataclass(frozen=True)
class ScreenPop:
    """A caller as Twilio connected them to an agent's line: what the desktop shows."""

    queue: str
    agent_call: str
    caller_call: str
    caller: str  # the caller's number, as Twilio gave it ("" when unknown)
    since: float  # epoch seconds: when they were connected
    waited: int = 0  # seconds in line before that
    context: dict[str, str] = field(default_factory=dict)  # what the flow collected

    def as_json(self) -> dict[str, Any]:
        since = dt.datetime.fromtimestamp(self.since, dt.UTC).isoformat()
        return {**asdict(self), "since": since}


class AgentLines:
    """QueueState's part about agents' lines (mixed in: it uses its client and prefix)."""

    redis: redis.Redis
    prefix: str
    stale_after: float
    _swept: dict[tuple[str, str], float]  # (what, queue) -> when this process last swept

    def _sweep_due(self, what: str, queue: str, now: float, every: float = 60.0) -> bool:
        """Whether this process should look for stale entries of `what` in `queue` now:
        entries go stale after hours, so once every `every` seconds is plenty, where reading
        them all on every webhook would cost more as the floor grows."""
        if now - self._swept.get((what, queue), float("-inf")) < every:
            return False
        self._swept[(what, queue)] = now
        return True

    @cached_property
    def _brief_script(self) -> Any:
        return self.redis.register_script(_BRIEF)

    def _key(self, queue: str, suffix: str) -> str:
        return f"{self.prefix}q:{queue}:{suffix}"

    def brief(self, queue: str, agent_call: str, now: float, hold: float = 60.0) -> str | None:
        """The caller at the head of the line, reserved for `agent_call` for `hold` seconds,
        or None when the prediction could not be kept: more than one agent on duty, another
        line holding a reservation (either could dequeue first), or nobody waiting."""
        keys = [self._key(queue, "briefed"), self._key(queue, "waiting"),
                self._key(queue, "agents")]
        sid = self._brief_script(keys=keys, args=[agent_call, repr(float(now)),
                                                  repr(float(now + hold)),
                                                  math.ceil(hold) + 1])
        return as_text(sid) if sid else None

    def briefed(self, queue: str, agent_call: str) -> str | None:
        """The caller `agent_call` was told about (and the reservation ends), if any."""
        key = self._key(queue, "briefed")
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(key, agent_call)
        pipe.hdel(key, agent_call)
        raw = pipe.execute()[0]
        return as_text(raw).rpartition(" ")[2] if raw is not None else None

    def connected(self, pop: ScreenPop) -> None:
        """Twilio bridged this pair: keep it for agents' desktops until the caller's end
        (pairs older than `stale_after` whose end never came are pruned here, now and then:
        `_sweep_due`)."""
        key = self._key(pop.queue, "connected")
        stale: list[str] = []
        if self._sweep_due("connected", pop.queue, pop.since):
            stale = [sid for sid, p in self._pops(pop.queue).items()
                     if p.since < pop.since - self.stale_after]
        pipe = self.redis.pipeline(transaction=True)
        if stale:
            pipe.hdel(key, *stale)
        pipe.hset(key, pop.caller_call, json.dumps(asdict(pop)))
        pipe.expire(key, int(self.stale_after))
        pipe.execute()

    def disconnected(self, queue: str, caller_call: str) -> bool:
        """The caller's queue result or call end came: their screen pop goes."""
        return bool(self.redis.hdel(self._key(queue, "connected"), caller_call))

    def screen_pops(self, queue: str, now: float, agent_call: str | None = None
                    ) -> list[ScreenPop]:
        """Who each agent line is talking to, most recent first (one line's with
        `agent_call`); pairs whose end was never reported, after `stale_after`, left out."""
        pops = [p for p in self._pops(queue).values() if p.since >= now - self.stale_after
                and (agent_call is None or p.agent_call == agent_call)]
        return sorted(pops, key=lambda p: (-p.since, p.agent_call))

    def _pops(self, queue: str) -> dict[str, ScreenPop]:
        out = {}
        for sid, raw in self.redis.hgetall(self._key(queue, "connected")).items():
            try:
                data = json.loads(raw)
                out[as_text(sid)] = ScreenPop(**data)
            except (TypeError, ValueError):
                continue  # not ours (an older format): left for the key's expiry
        return out
