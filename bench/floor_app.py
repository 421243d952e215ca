"""A floor for the IVR (`--floor`): bare Flask plus the two Redis round trips every webhook
makes, and nothing else.

Why: the IVR/bare ratio mixes two costs, the IVR's own work (signature, engine, TwiML, call
log) and the Redis round trips any server that keeps call state in Redis must make (read
the session; write it back with the call-log record). This app does only the second, with
the IVR's Redis client settings and about its sizes (a 1 kB session, a 0.5 kB record), so
floor/bare says how far the ratio could go if the IVR's own work cost nothing.
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request

from ivr_server.redis_conn import connect

from .bare_app import TWIML

PREFIX = os.environ.get("IVR_REDIS_PREFIX", "ivrbench:")
SESSION = json.dumps({"vars": {"x": "y" * 900}})
RECORD = json.dumps({"op": "events", "events": [{"data": "z" * 450}]})

redis = connect(os.environ["REDIS_URL"])
app = Flask(__name__)


@app.post("/voice/<path:_rest>")
def voice(_rest: str) -> Response:
    key = f"{PREFIX}floor:{request.form.get('CallSid', '')}"
    redis.get(key)
    pipe = redis.pipeline(transaction=False)
    pipe.set(key, SESSION, ex=600)
    pipe.rpush(f"{PREFIX}floor:log", RECORD)
    pipe.execute()
    return Response(TWIML, 200, mimetype="text/xml")
