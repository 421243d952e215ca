"""WSGI entry point for gunicorn and other servers: `gunicorn ivr_server.wsgi:app`.

Configured by config.toml and the environment only; needs REDIS_URL (the embedded Redis
belongs to `ivr serve`). Use gthread workers (media streams hold a thread each) and no
--preload, so each worker builds its own app and connections after the fork:
`gunicorn -k gthread --workers 3 --threads 16 ivr_server.wsgi:app`. `ivr serve --production`
does the same from config.toml alone. Each worker process starts its own call-log writer
thread and writes what it still has queued when it exits.
"""

from __future__ import annotations

import atexit

from . import create_app

app = create_app()
app.extensions["ivr"].start_background()
atexit.register(app.extensions["ivr"].close)  # gunicorn workers leave through sys.exit
