"""The package stays pure: no web, queue, database or Twilio imports, one public surface."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import callbacks

ROOT = Path(__file__).resolve().parents[2]


def test_importing_callbacks_pulls_in_no_server_libraries() -> None:
    code = ("import sys, callbacks, callbacks.window, callbacks.retry, callbacks.phrasing; "
            "bad = {'flask', 'redis', 'rq', 'twilio', 'sqlalchemy', 'ivr_server'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_is_exported() -> None:
    for name in callbacks.__all__:
        assert hasattr(callbacks, name), name
    assert {"callable_number", "time_zones", "CallingPolicy", "next_opening", "closes_at",
            "is_open", "RetryPolicy", "next_delay", "State", "check_transition",
            "when_phrase", "NotCallable", "WindowError"} <= set(callbacks.__all__)
