"""Several web nodes, each with its own flows folder: the newest publication serves everywhere."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from ivr_server import create_app
from ivr_server.simulator.caller import SimulatedCall
from ivr_server.simulator.transport import InProcessTransport

from .conftest import AUTH_TOKEN, PUBLIC_URL

OLD_PROMPT = "For billing, press 1."


def node(config, clock, flows: Path):  # noqa: ANN001, ANN201 - a Flask app on its own folder
    return create_app(config.with_section("flows", directory=str(flows)), clock=clock)


def second_folder(flows_dir: Path, tmp_path: Path) -> Path:
    other = tmp_path / "node_b_flows"
    shutil.copytree(flows_dir, other)
    return other


def edit(folder: Path, new_prompt: str, *, age: float = 0.0) -> None:
    path = folder / "company.yaml"
    text = path.read_text()
    path.write_text(text.replace(OLD_PROMPT, new_prompt))
    if age:  # an old file, as on a node that was not redeployed
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))


def first_prompt(app) -> str:  # noqa: ANN001
    call = SimulatedCall(InProcessTransport(app, PUBLIC_URL), AUTH_TOKEN,
                         from_=f"+1415555{uuid.uuid4().int % 10000:04d}")
    call.dial()
    return " ".join(call.heard)


def test_an_edit_published_on_one_node_is_what_new_callers_hear_on_another(
        config, clock, flows_dir, tmp_path):
    node_a = node(config, clock, flows_dir)
    node_b = node(config, clock, second_folder(flows_dir, tmp_path))
    assert OLD_PROMPT in first_prompt(node_b)
    new_prompt = f"For bills, press 1 ({uuid.uuid4().hex[:6]})."
    edit(flows_dir, new_prompt)
    assert new_prompt in first_prompt(node_a)
    assert new_prompt in first_prompt(node_b)  # node B's own file still has the old prompt


def test_a_node_restarted_with_stale_files_does_not_roll_the_others_back(
        config, clock, flows_dir, tmp_path):
    stale = second_folder(flows_dir, tmp_path)
    new_prompt = f"For bills, press 1 ({uuid.uuid4().hex[:6]})."
    edit(flows_dir, new_prompt)
    node_a = node(config, clock, flows_dir)
    edit(stale, f"For billing, press one ({uuid.uuid4().hex[:6]}).", age=3600)
    node_b = node(config, clock, stale)
    assert new_prompt in first_prompt(node_b)
    assert new_prompt in first_prompt(node_a)


def test_a_later_edit_on_the_other_node_wins_everywhere_and_calls_keep_their_version(
        config, clock, flows_dir, tmp_path):
    other = second_folder(flows_dir, tmp_path)
    node_a = node(config, clock, flows_dir)
    node_b = node(config, clock, other)
    in_progress = SimulatedCall(InProcessTransport(node_a, PUBLIC_URL), AUTH_TOKEN)
    in_progress.dial()
    newer = f"For money matters, press 1 ({uuid.uuid4().hex[:6]})."
    edit(other, newer)
    assert newer in first_prompt(node_b)
    assert newer in first_prompt(node_a)
    in_progress.silence()  # its reprompt still comes from the version it started on
    assert OLD_PROMPT in in_progress.heard_since_input[-1]


def test_a_broken_edit_on_one_node_publishes_nothing(config, clock, flows_dir, tmp_path):
    node_a = node(config, clock, flows_dir)
    node_b = node(config, clock, second_folder(flows_dir, tmp_path))
    path = flows_dir / "company.yaml"
    path.write_text(path.read_text().replace("start: check_hours", "start: nowhere"))
    assert OLD_PROMPT in first_prompt(node_a)
    assert OLD_PROMPT in first_prompt(node_b)
