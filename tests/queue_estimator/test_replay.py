"""The replay command, run for real: prefix property, determinism, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import small_log

ROOT = Path(__file__).resolve().parents[2]


def _replay(events: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "queue_estimator.replay", str(events), str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_output_for_a_prefix_is_a_prefix_and_runs_are_identical(tmp_path: Path) -> None:
    log = small_log(tmp_path)
    lines = log.read_text().splitlines()
    cut = next(i for i in range(len(lines) * 2 // 3, len(lines)) if ",arrive," in lines[i])
    prefix = tmp_path / "prefix.csv"
    prefix.write_text("\n".join(lines[:cut]) + "\n")

    for name in ("whole1", "whole2"):
        assert _replay(log, tmp_path / f"{name}.csv").returncode == 0
    assert _replay(prefix, tmp_path / "prefix_out.csv").returncode == 0

    whole = (tmp_path / "whole1.csv").read_text().splitlines()
    assert whole == (tmp_path / "whole2.csv").read_text().splitlines()
    part = (tmp_path / "prefix_out.csv").read_text().splitlines()
    assert whole[0] == part[0] == "call_id,predicted_wait_s,p10,p90"
    assert len(whole) - 1 == sum(",arrive," in line for line in lines)
    assert 10 < len(part) < len(whole)
    assert whole[: len(part)] == part
    for row in whole[1:]:
        _, predicted, p10, p90 = row.split(",")
        assert float(p10) <= float(predicted) <= float(p90)


def test_every_predictor_can_be_chosen(tmp_path: Path) -> None:
    log = small_log(tmp_path, hours=0.5)
    result = _replay(log, tmp_path / "out.csv", "--predictor", "qlm")
    assert result.returncode == 0, result.stderr
    assert _replay(log, tmp_path / "x.csv", "--predictor", "psychic").returncode == 2


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("ts,kind,call_id,value\n", 1, "expected header ts,event,call_id,value"),
        ("ts,event,call_id,value\n0,agents,,2\nsoon,arrive,a,\n", 3, "not a number"),
        ("ts,event,call_id,value\n0,agents,,2\n1,teleport,a,\n", 3, "unknown event 'teleport'"),
        ("ts,event,call_id,value\n0,agents,,two\n", 2, "whole number"),
        ("ts,event,call_id,value\n0,agents,,2\n1,arrive,,\n", 3, "arrive needs a call_id"),
        ("ts,event,call_id,value\n0,agents,,2\n1,arrive,a\n", 3, "expected 4 columns"),
        ("ts,event,call_id,value\n0,agents,,2\n5,arrive,a,\n4,answer,a,\n", 4, "time order"),
    ],
)
def test_a_malformed_log_is_reported_as_file_line_message(
        tmp_path: Path, content: str, line: int, message: str) -> None:
    events = tmp_path / "bad.csv"
    events.write_text(content)
    out = tmp_path / "out.csv"
    result = _replay(events, out)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{events}:{line}: ")
    assert message in result.stderr
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_a_missing_log_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = _replay(tmp_path / "nope.csv", tmp_path / "out.csv")
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr
