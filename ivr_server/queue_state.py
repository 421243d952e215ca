"""Live queue state in Redis: who waits since when, who is with an agent, agents on duty, and
the queue's recent event log that the wait predictor replays.

Every change is one Lua script, so any number of web processes can report the same call
(Twilio retries, a status callback racing the queue's action URL) and it is counted once:
an `answer` only for a caller who was waiting, a `hangup` only for a call in service.
Entries whose end was never reported (a lost callback) expire after `stale_after`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from .agent_lines import AgentLines
from .redis_conn import as_text

# KEYS: waiting zset, service hash, events list, agents string, on-duty set, event counter.
# ARGV: op, call, ts, value, cap.
_SCRIPT = """
local waiting, service, events, agents, duty = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local counter = KEYS[6]
local op, call, ts, value, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local changed = 0
if op == 'arrive' then
  if redis.call('HEXISTS', service, call) == 0 then
    changed = redis.call('ZADD', waiting, 'NX', ts, call)
  end
elseif op == 'answer' then
  changed = redis.call('ZREM', waiting, call)
  if changed == 1 then redis.call('HSET', service, call, ts) end
elseif op == 'abandon' then
  changed = redis.call('ZREM', waiting, call)
elseif op == 'hangup' then
  changed = redis.call('HDEL', service, call)
elseif op == 'agents' then
  if redis.call('GET', agents) ~= value then changed = 1 end
  redis.call('SET', agents, value)
elseif op == 'sign_in' or op == 'sign_out' then
  local moved = 0
  if op == 'sign_in' then moved = redis.call('SADD', duty, value)
  else moved = redis.call('SREM', duty, value) end
  if moved == 1 then
    op, call, value = 'agents', '', tostring(redis.call('SCARD', duty))
    if redis.call('GET', agents) ~= value then changed = 1 end
    redis.call('SET', agents, value)
  end
end
if changed == 1 then
  redis.call('RPUSH', events, cjson.encode({ts, op, call, value}))
  redis.call('LTRIM', events, -cap, -1)
  redis.call('INCR', counter)
end
return changed
"""


@dataclass(frozen=True)
class QueueEvent:
    """One line of a queue's log, in the replay format: ts,event,call_id,value."""

    ts: float
    event: str  # arrive, answer, abandon, hangup, agents
    call_id: str
    value: str = ""


class QueueState(AgentLines):
    """One Redis-backed view of every queue. Times are epoch seconds from the app's clock.
    What agents' lines are told (briefs, screen pops) is in agent_lines.py."""

    def __init__(self, client: redis.Redis, prefix: str, *, max_events: int = 5000,
                 stale_after: float = 4 * 3600):
        self.redis, self.prefix = client, prefix
        self.max_events, self.stale_after = max_events, stale_after
        self._script = client.register_script(_SCRIPT)
        self._swept = {}  # see AgentLines._sweep_due

    def _keys(self, queue: str) -> list[str]:
        base = f"{self.prefix}q:{queue}:"
        return [base + "waiting", base + "service", base + "events", base + "agents",
                base + "on_duty", base + "count"]

    def _apply(self, queue: str, op: str, call_sid: str, ts: float, value: str = "") -> bool:
        return bool(self._script(keys=self._keys(queue),
                                 args=[op, call_sid, repr(float(ts)), value, self.max_events]))

    def arrive(self, queue: str, call_sid: str, ts: float) -> bool:
        """The caller joined (True the first time only)."""
        return self._apply(queue, "arrive", call_sid, ts)

    def answer(self, queue: str, call_sid: str, ts: float) -> bool:
        """An agent took the caller (only counts a caller who was waiting)."""
        return self._apply(queue, "answer", call_sid, ts)

    def abandon(self, queue: str, call_sid: str, ts: float) -> bool:
        """The caller left the queue without an agent (hung up, left, queue failed)."""
        return self._apply(queue, "abandon", call_sid, ts)

    def hangup(self, queue: str, call_sid: str, ts: float) -> bool:
        """The agent's call with the caller ended."""
        return self._apply(queue, "hangup", call_sid, ts)

    def set_agents(self, queue: str, count: int, ts: float) -> bool:
        if count < 0:
            raise ValueError(f"agents on duty cannot be negative ({count})")
        return self._apply(queue, "agents", "", ts, str(count))

    def sign_in(self, queue: str, agent: str, ts: float) -> bool:
        """An agent goes on duty for `queue` (False if already on); the count follows."""
        return self._apply(queue, "sign_in", "", ts, _agent_name(agent))

    def sign_out(self, queue: str, agent: str, ts: float) -> bool:
        return self._apply(queue, "sign_out", "", ts, _agent_name(agent))

    def on_duty(self, queue: str) -> list[str]:
        return sorted(as_text(a) for a in self.redis.smembers(self._keys(queue)[4]))

    def agents(self, queue: str) -> int | None:
        raw = self.redis.get(self._keys(queue)[3])
        return int(raw) if raw is not None else None

    def waiting(self, queue: str) -> list[tuple[str, float]]:
        """(call sid, joined at), head of the line first."""
        rows = self.redis.zrange(self._keys(queue)[0], 0, -1, withscores=True)
        return [(as_text(sid), float(ts)) for sid, ts in rows]

    def in_service(self, queue: str) -> dict[str, float]:
        rows = self.redis.hgetall(self._keys(queue)[1])
        return {as_text(sid): float(ts) for sid, ts in rows.items()}

    def events(self, queue: str) -> list[QueueEvent]:
        return self.events_since(queue, 0)[0]

    def events_since(self, queue: str, index: int) -> tuple[list[QueueEvent], int]:
        """The kept events from absolute index `index` on (or from the oldest kept one),
        and the absolute index of the first returned: every event ever logged is numbered."""
        keys = self._keys(queue)
        for _ in range(5):  # an event logged between the reads: read again
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(keys[5])
            pipe.llen(keys[2])
            total, kept = pipe.execute()
            total, first = int(total or 0), int(total or 0) - kept
            start = max(index, first) if index <= total else first  # a reset log: all
            raw = self.redis.lrange(keys[2], start - first, -1)
            if len(raw) == total - start:
                break
        out = []
        for item in raw:
            ts, event, call_id, value = json.loads(item)
            out.append(QueueEvent(float(ts), str(event), str(call_id), str(value)))
        return out, start

    def load_estimator(self, queue: str) -> dict | None:
        raw = self.redis.get(f"{self.prefix}q:{queue}:estimator")
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def save_estimator(self, queue: str, saved: dict) -> None:
        self.redis.set(f"{self.prefix}q:{queue}:estimator", json.dumps(saved),
                       ex=int(self.stale_after * 6))

    def expire_stale(self, queue: str, now: float, every: float = 60.0) -> int:
        """End entries whose end never came (a lost callback): waiting ones as abandoned,
        ones in service as hung up, so they stop skewing the estimates. Called on every
        wait poll, it looks at most every `every` seconds per queue (`_sweep_due`)."""
        if not self._sweep_due("waiting", queue, now, every):
            return 0
        cutoff = now - self.stale_after
        ended = 0
        # Only the stale waiting callers (by score), not the whole line on every wait poll.
        for sid in self.redis.zrangebyscore(self._keys(queue)[0], "-inf", f"({cutoff!r}"):
            ended += self.abandon(queue, as_text(sid), now)
        for sid, started in self.in_service(queue).items():
            if started < cutoff:
                ended += self.hangup(queue, sid, now)
        return ended


def _agent_name(agent: str) -> str:
    name = agent.strip()
    if not name or len(name) > 64:
        raise ValueError(f"an agent needs a name of 1 to 64 characters, not {agent!r}")
    return name
