"""Publishing from the web is a checked, atomic edit of the flow's file: refused versions
change nothing, stale forms never overwrite someone else's publication."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ivr_server.admin.flow_diff import diff_sources
from ivr_server.flow_publish import (
    FlowPublishError,
    NothingToPublish,
    StalePublish,
    check,
    publish,
    rollback,
    write_atomically,
)
from ivr_server.registry import FlowRegistry

from .conftest import DEMO_FLOWS

OLD_PROMPT = "For billing, press 1."


def own_flow(flows_dir: Path, registry: FlowRegistry, prefix: str = "pub") -> tuple[str, Path]:
    """A copy of the demo flow under a unique name: its history is this test's alone."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    path = flows_dir / f"{name}.yaml"
    path.write_text((DEMO_FLOWS / "company.yaml").read_text()
                    .replace("flow: company", f"flow: {name}"))
    registry.refresh(force=True)
    return name, path


@pytest.fixture
def registry(app) -> FlowRegistry:  # noqa: ANN001
    return app.extensions["ivr"].registry


def test_publish_writes_the_file_and_the_new_version_is_live_at_once(registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    before = registry.live_version(name)
    text = path.read_text().replace(OLD_PROMPT, "For bills, press 1.")
    done = publish(registry, name, text, base=before)
    assert done.previous == before and done.path == path
    assert path.read_text() == text
    assert registry.live_version(name) == done.flow.version != before
    assert [r.version for r in registry.history(name)] == [done.flow.version, before]
    assert not [p for p in flows_dir.iterdir() if p.name.endswith(".tmp")]


def test_textarea_line_ends_are_normalised_before_hashing(registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    text = path.read_text().replace(OLD_PROMPT, "For bills, press 1.")
    done = publish(registry, name, text.replace("\n", "\r\n"), base=None)
    assert path.read_bytes() == text.encode()
    assert done.flow.source == text


def test_broken_yaml_is_refused_with_file_and_line_and_nothing_changes(registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    before, text = registry.live_version(name), path.read_text()
    broken = text.replace("goto: account_number", "goto: acount_number")
    with pytest.raises(FlowPublishError) as refused:
        publish(registry, name, broken, base=before)
    assert refused.value.flow == name and refused.value.file == str(path)
    assert any(str(p).startswith(f"{path}:") and "unknown node 'acount_number'" in str(p)
               for p in refused.value.problems)
    assert isinstance(refused.value.line, int) and refused.value.line > 1
    assert path.read_text() == text and registry.live_version(name) == before


def test_unparsable_yaml_is_refused_with_its_line(registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    with pytest.raises(FlowPublishError) as refused:
        publish(registry, name, path.read_text() + "\n  bad: [unclosed\n", base=None)
    assert str(refused.value.problems[0]).startswith(f"{path}:")


def test_a_candidate_naming_another_flow_is_refused(registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    other = path.read_text().replace(f"flow: {name}", "flow: somebody-else")
    with pytest.raises(FlowPublishError) as refused:
        check(registry, name, other)
    assert str(refused.value.problems[0]) == (
        f"{path}:4: this file says flow: 'somebody-else'; you are publishing {name!r}")


def test_a_stale_base_is_refused_rather_than_overwriting_the_other_publication(
        registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    base = registry.live_version(name)
    theirs = publish(registry, name, path.read_text().replace(OLD_PROMPT, "Theirs, press 1."),
                     base=base)
    mine = path.read_text().replace("Theirs, press 1.", "Mine, press 1.")
    with pytest.raises(StalePublish) as stale:
        publish(registry, name, mine, base=base)
    assert stale.value.live == theirs.flow.version and "someone else" in str(stale.value)
    assert "Theirs, press 1." in path.read_text()


def test_publishing_the_live_version_again_changes_nothing(registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    with pytest.raises(NothingToPublish):
        publish(registry, name, path.read_text(), base=registry.live_version(name))


def test_rollback_republishes_a_stored_version(registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    first = registry.live_version(name)
    original = path.read_text()
    publish(registry, name, original.replace(OLD_PROMPT, "For bills, press 1."), base=first)
    done = rollback(registry, name, first, base=registry.live_version(name))
    assert done.flow.version == first and path.read_text() == original
    assert registry.current(name).version == first


def test_rollback_to_an_unknown_version_is_refused(registry, flows_dir):
    name, _ = own_flow(flows_dir, registry)
    with pytest.raises(FlowPublishError, match="not stored"):
        rollback(registry, name, "0" * 16, base=None)


def test_a_publish_within_the_same_mtime_is_still_seen(registry, flows_dir):
    """Same size, same mtime: only the forced reload notices the new content."""
    name, path = own_flow(flows_dir, registry)
    stamp = path.stat()
    text = path.read_text().replace("press 1.", "press 9.", 1)
    done = publish(registry, name, text, base=None)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert registry.current(name).version == done.flow.version


def test_atomic_write_keeps_the_file_mode(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("old")
    path.chmod(0o640)
    write_atomically(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["x.yaml"]


# -- flow_diff (pure) ---------------------------------------------------------------------

def test_diff_numbers_added_removed_and_context_lines():
    old = "a\nb\nc\nd\n"
    new = "a\nB\nc\nd\ne\n"
    d = diff_sources(old, new, context=1)
    assert [(x.kind, x.text, x.old, x.new) for x in d.lines] == [
        ("hunk", "@@ -1,4 +1,5 @@", None, None),
        ("same", "a", 1, 1), ("del", "b", 2, None), ("add", "B", None, 2),
        ("same", "c", 3, 3), ("same", "d", 4, 4), ("add", "e", None, 5)]
    assert (d.added, d.removed, d.same) == (2, 1, False)


def test_diff_of_identical_sources_is_empty():
    assert diff_sources("x: 1\n", "x: 1\n").same


def test_diff_keeps_content_lines_that_look_like_file_headers():
    d = diff_sources("---\nx: 1\n", "---\nx: 2\n+++\n")
    assert ("add", "+++") in [(x.kind, x.text) for x in d.lines]
    assert ("same", "---") in [(x.kind, x.text) for x in d.lines]


def test_diff_splits_far_apart_changes_into_hunks():
    old = "".join(f"line {i}\n" for i in range(30))
    new = old.replace("line 2\n", "line two\n").replace("line 25\n", "line 25!\n")
    d = diff_sources(old, new)
    hunks = [x for x in d.lines if x.kind == "hunk"]
    assert len(hunks) == 2 and hunks[1].text.startswith("@@ -23,")
    assert next(x for x in d.lines if x.text == "line 25!").new == 26
