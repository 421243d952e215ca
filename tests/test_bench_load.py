"""The production load bench still runs: a few seconds of it, at a low rate, walk every path
(billing menu, an agent taking a caller, an abandon, a callback booked, placed and answered,
texts through Twilio's contract) with no error of any kind. Speed is the bench's business,
not this test's: nothing here is timed."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_a_short_load_run_walks_every_path_without_an_error(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "--minutes", "0.15", "--rate", "20",
         "--time-scale", "0.5", "--mix", "billing=25,agent=25,abandon=25,callback=25",
         "--textable", "0.5", "--drain", "90", "--no-throughput", "--seed", "7",
         "--json", str(out)],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=240)
    report = f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert out.exists(), report
    result = json.loads(out.read_text())

    assert {k: v for k, v in result["errors"].items() if v} == {}, report
    assert done.returncode == 0, report
    outcomes = result["phase1"]["calls"]["outcomes"]
    for path in ("billing", "agent", "abandoned", "callback booked", "callback answered"):
        assert outcomes.get(path, 0) >= 1, (path, outcomes)
    twilio = result["phase1"]["twilio"]
    assert twilio["sms_accepted"] >= 1 and twilio["calls_accepted"] >= 1, twilio
    sms_kinds = {key.split(" ")[0] for key in result["phase1"]["checks"]["db"]["sms"]}
    assert "wait_estimate" in sms_kinds, sms_kinds
    assert result["phase1"]["webhooks"]["webhooks"] > 0
    assert "| errors (every kind below) | **0** |" in done.stdout


def test_bare_flask_is_measured_for_the_whole_run_however_few_requests_were_signed(
        tmp_path: Path) -> None:
    """The ratio's denominator: bare Flask replays the IVR's signed requests round and round,
    so a server faster than the replay is long still answers for all of wrk's seconds (a
    replay that ran out once made bare Flask look slower and the ratio better)."""
    from bench import load_ratio

    wrk_path = shutil.which("wrk")
    if wrk_path is None:
        pytest.fail("wrk is not installed (./dev test installs it with apt-get)", pytrace=False)
    replay = load_ratio.script(tmp_path, 9, "token", "ratio", "t", calls=4, threads=1,
                               connections=2)  # 12 requests: gone in milliseconds
    args = argparse.Namespace(wrk_threads=1, connections=2, wrk_seconds=2.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    bare = load_ratio.bare_throughput(wrk_path, tmp_path, replay, 1, 2, args, env)["result"]

    assert not bare["exhausted"], bare
    assert bare["answered"] > 12 * 10 and bare["seconds"] >= 1.5, bare
    assert bare["intended"] == bare["answered"], bare  # every answer a 200 with TwiML
