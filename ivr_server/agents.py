"""Agents on duty: who answers each queue, set by agents signing in and out.

`POST /agents/sign-in` and `/agents/sign-out` (form or JSON: queue, agent) for a desk
phone, a wallboard or a workforce tool, with `Authorization: Bearer <queues.api_token>`;
`GET /agents?queue=NAME` lists who is on duty, and `GET /agents/connected?queue=NAME`
(optionally `&agent_call=SID`) which caller each agent line was connected to, for a
screen pop. With no token configured the API is off (404) and `ivr agents in/out` on the
server does the same. The count of agents on duty is
what the wait predictor divides the work by, so it is logged in the queue's events.
"""

from __future__ import annotations

import logging
import re

import redis
from flask import Blueprint, Response, current_app, jsonify, request

from .signature import bearer_matches
from .voice_safety import SID

log = logging.getLogger("ivr_server.agents")
bp = Blueprint("agents", __name__, url_prefix="/agents")
RETRY_AFTER_SECONDS = 5
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@bp.before_request
def require_token() -> Response | None:
    token = current_app.extensions["ivr"].config.queues.api_token
    if not token:
        return Response("Not found: the agents API is off (set queues.api_token)\n", 404,
                        mimetype="text/plain")
    if not bearer_matches(request.headers.get("Authorization", ""), token):
        return Response("Forbidden: wrong or missing bearer token\n", 403, mimetype="text/plain")
    return None


@bp.errorhandler(redis.RedisError)
def redis_unavailable(exc: redis.RedisError) -> tuple[Response, int]:
    """Who is on duty lives in Redis: without it, say so (503, retry) rather than a bare 500,
    so a desk phone or workforce tool retries instead of reporting a server fault."""
    log.warning("agents API %s: Redis unavailable (%s)", request.path, exc)
    response = jsonify(error="the live queue state (Redis) is unavailable; try again shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, 503


def _fields() -> tuple[str, str]:
    data = request.get_json(silent=True) if request.is_json else request.form
    data = data if isinstance(data, dict) or hasattr(data, "get") else {}
    queue, agent = str(data.get("queue", "")), str(data.get("agent", "")).strip()
    if not QUEUE_NAME.match(queue):
        raise ValueError(f"queue: {queue[:70]!r} is not a queue name")
    if not agent or len(agent) > 64:
        raise ValueError("agent: a name of 1 to 64 characters is needed")
    return queue, agent


@bp.post("/sign-in")
def sign_in() -> tuple[Response, int]:
    return _change("in")


@bp.post("/sign-out")
def sign_out() -> tuple[Response, int]:
    return _change("out")


def _change(direction: str) -> tuple[Response, int]:
    s = current_app.extensions["ivr"]
    try:
        queue, agent = _fields()
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    ts = s.clock().timestamp()
    change = s.queues.sign_in if direction == "in" else s.queues.sign_out
    changed = change(queue, agent, ts)
    return jsonify(queue=queue, agent=agent, changed=changed, on_duty=s.queues.on_duty(queue),
                   agents=s.queues.agents(queue) or 0), 200


@bp.get("")
def on_duty() -> tuple[Response, int]:
    s = current_app.extensions["ivr"]
    queue = request.args.get("queue", "")
    if not QUEUE_NAME.match(queue):
        return jsonify(error="give ?queue=NAME"), 400
    return jsonify(queue=queue, on_duty=s.queues.on_duty(queue),
                   agents=s.queues.agents(queue) or 0, waiting=len(s.queues.waiting(queue))), 200


@bp.get("/connected")
def connected() -> tuple[Response, int]:
    """Screen pops: the caller each agent line is talking to, as Twilio connected them."""
    s = current_app.extensions["ivr"]
    queue, agent_call = request.args.get("queue", ""), request.args.get("agent_call")
    if not QUEUE_NAME.match(queue):
        return jsonify(error="give ?queue=NAME"), 400
    if agent_call is not None and not SID.match(agent_call):
        return jsonify(error="agent_call: not a call SID"), 400
    pops = s.queues.screen_pops(queue, s.clock().timestamp(), agent_call)
    return jsonify(queue=queue, connected=[p.as_json() for p in pops]), 200
