"""WSGI entry point for gunicorn and other servers: `gunicorn ivr_server.wsgi:app`.

Configured by config.toml and the environment only; needs REDIS_URL (the embedded Redis
belongs to `ivr serve`). Each worker process starts its own call-log writer thread.
"""

from __future__ import annotations

from . import create_app

app = create_app()
app.extensions["ivr"].start_background()
