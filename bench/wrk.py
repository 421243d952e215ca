"""Closed-loop maximum throughput with wrk, replaying pre-signed calls from Lua data files.

Why Lua data files: wrk's request() runs per request in each thread, so the requests
(signed in Python, split per thread, each call's steps far apart) are loaded once by
init() and handed out in order; response() classifies every answer so a run that was
'fast' because it served 403s or the safe path is caught.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .calls import CATEGORIES, KINDS, MARKERS, Req, write_lua_data
from .servers import BenchError

SCRIPT = r"""
local dir = %(dir)s
local wrap = %(wrap)s
local markers = %(markers)s
local threads, next_id = {}, 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local d = dofile(dir .. "/requests_" .. tid .. ".lua")
  reqs, kinds, n, i, exhausted = d.requests, d.kinds, #d.requests, 0, 0
  issued = {0, 0, 0}
  got = {}
  for _, c in ipairs(%(categories)s) do got[c] = 0 end
end

function request()
  if tid == 0 and not verified then
    -- wrk calls request() once on the first thread before the run, to check the request,
    -- and never sends it: hand out the first request without consuming it.
    verified = true
    return reqs[1]
  end
  i = i + 1
  if i > n then
    if wrap then
      i = 1  -- a server that answers every request alike (bare, floor): replay from the top
    else
      exhausted = 1
      i = n
    end
  end
  issued[kinds[i] + 1] = issued[kinds[i] + 1] + 1
  return reqs[i]
end

function response(status, headers, body)
  local c
  if status == 403 then c = "forbidden"
  elseif status ~= 200 then c = "other_status"
  else
    c = "other_body"
    for _, m in ipairs(markers) do
      if body:find(m[2], 1, true) then c = m[1]; break end
    end
  end
  got[c] = got[c] + 1
  if exhausted == 1 then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local iss, cat, ex = {0, 0, 0}, {}, 0
  for _, t in ipairs(threads) do
    local ti, tg = t:get("issued"), t:get("got")
    for k = 1, 3 do iss[k] = iss[k] + ti[k] end
    for c, v in pairs(tg) do cat[c] = (cat[c] or 0) + v end
    ex = ex + t:get("exhausted")
  end
  local parts = {}
  for c, v in pairs(cat) do parts[#parts + 1] = string.format('"%%s": %%d', c, v) end
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %%d, "duration_us": %%d, "bytes": %%d, '
    .. '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}, '
    .. '"latency_us": {"p50": %%d, "p90": %%d, "p99": %%d, "max": %%d}, '
    .. '"issued": [%%d, %%d, %%d], "exhausted": %%d, "categories": {%%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, iss[1], iss[2], iss[3], ex, table.concat(parts, ", ")))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    issued: dict[str, int]
    categories: dict[str, int]
    exhausted: bool
    command: list[str] = field(default_factory=list)


def _lua(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid Lua string literal here
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    raise TypeError(type(value))


def prepare(workdir: Path, per_thread: list[list[Req]], host: str) -> Path:
    """Write one data file per wrk thread and the script that replays them; returns the script.
    Beside it, `wrapping(script)` replays the same requests round and round."""
    workdir.mkdir(parents=True, exist_ok=True)
    for tid, reqs in enumerate(per_thread):
        write_lua_data(workdir / f"requests_{tid}.lua", reqs, host)
    script = workdir / "replay.lua"
    for path, wrap in ((script, "false"), (wrapping(script), "true")):
        path.write_text(SCRIPT % {"dir": _lua(str(workdir)), "wrap": wrap,
                                  "markers": _lua([list(m) for m in MARKERS]),
                                  "categories": _lua(list(CATEGORIES))})
    return script


def wrapping(script: Path) -> Path:
    """The replay that starts over when the requests run out instead of stopping: for the
    bare and floor servers, which answer any request alike and may be far faster than the
    IVR whose --calls sized the data (stopping early would understate them)."""
    return script.with_name("replay_wrap.lua")


def run(wrk: str, script: Path, url: str, threads: int, connections: int,
        seconds: float) -> WrkResult:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[len("BENCH "):])
    secs = data["duration_us"] / 1e6
    return WrkResult(
        requests=data["requests"], seconds=round(secs, 2), rps=round(data["requests"] / secs, 1),
        socket_errors={k: v for k, v in data["errors"].items() if k != "status"},
        latency_ms={k: round(v / 1000, 2) for k, v in data["latency_us"].items()},
        issued=dict(zip(KINDS, data["issued"], strict=True)),
        categories={c: data["categories"].get(c, 0) for c in CATEGORIES if c != "socket_error"},
        exhausted=bool(data["exhausted"]), command=cmd)
