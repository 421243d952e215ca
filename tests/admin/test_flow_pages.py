"""The Flows pages: ops see what is live, its history, checks, graph and diffs, and
publish or roll back from the browser; supervisors may not."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from ivr_server.registry import FlowRegistry

from ..test_flow_publish import own_flow as own_published_flow

OLD_PROMPT = "For billing, press 1."
NEW_PROMPT = "For anything about bills or payments, press 1."


@pytest.fixture
def registry(app) -> FlowRegistry:  # noqa: ANN001
    return app.extensions["ivr"].registry


@pytest.fixture
def ops(signed_in):  # noqa: ANN001, ANN201
    return signed_in("ops")


def own_flow(flows_dir: Path, registry: FlowRegistry) -> tuple[str, Path]:
    """The demo flow under a unique name, so its history is this test's alone."""
    return own_published_flow(flows_dir, registry, prefix="page")


def textarea(page: str) -> str:
    match = re.search(r'<textarea[^>]*id="flow-source-input"[^>]*>\n?(.*?)</textarea>', page,
                      re.S)
    assert match, "no publish textarea"
    return html.unescape(match.group(1))


def publish_via_page(ops, name: str, source: str, base: str, action: str = "publish"):  # noqa: ANN001, ANN201
    return ops.post(f"/admin/flows/{name}/publish",
                    {"source": source, "base": base, "action": action})


def test_supervisor_gets_403_on_every_flows_page(signed_in, registry, flows_dir):
    supervisor = signed_in("supervisor")
    version = registry.live_version("company")
    assert supervisor.get("/admin/flows/").status_code == 403
    assert supervisor.get("/admin/flows/company").status_code == 403
    assert supervisor.get("/admin/flows/company/publish").status_code == 403
    response = publish_via_page(supervisor, "company", "flow: company\n", version)
    assert response.status_code == 403
    assert registry.live_version("company") == version


def test_list_shows_live_versions_files_and_refused_files(ops, registry, flows_dir):
    (flows_dir / "broken.yaml").write_text("flow: broken\nstart: nowhere\nnodes: {}\n")
    registry.refresh(force=True)
    page = ops.get("/admin/flows/").text
    assert f'data-flow="company" data-version="{registry.live_version("company")}"' in page
    assert "company.yaml" in page and "agents.yaml" in page
    assert re.search(r"broken\.yaml:\d+: ", page), "refused file without file:line problems"


def test_flow_page_shows_the_graph_text_checks_and_history(ops, registry):
    live = registry.current("company")
    page = ops.get("/admin/flows/company").text
    assert 'id="flow-graph"' in page and 'id="flow-graph-data"' in page
    assert "flowchart TD" in page and f"version {live.version}" in page
    assert 'id="flow-checks"' in page and 'id="flow-warnings"' in page
    assert f'<tr data-version="{live.version}" data-live="1">' in page
    assert "<script>" not in page  # the CSP forbids inline code; data goes in JSON blocks


def test_unknown_flow_is_404(ops):
    assert ops.get("/admin/flows/no-such-flow").status_code == 404


def test_publish_form_is_prefilled_with_the_live_source_and_version(ops, registry):
    live = registry.current("company")
    page = ops.get("/admin/flows/company/publish").text
    assert textarea(page) == live.source
    assert f'name="base" value="{live.version}"' in page


def test_check_reports_the_would_be_version_without_publishing(ops, registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    before, text = registry.live_version(name), path.read_text()
    changed = text.replace(OLD_PROMPT, NEW_PROMPT)
    response = publish_via_page(ops, name, changed, before, action="check")
    assert response.status_code == 200
    assert 'id="check-result"' in response.text and 'id="check-diff"' in response.text
    assert html.escape(NEW_PROMPT, quote=False) in response.text
    assert path.read_text() == text and registry.live_version(name) == before


def test_publish_accepted_goes_live_and_is_audited(ops, app, registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    before = registry.live_version(name)
    changed = path.read_text().replace(OLD_PROMPT, NEW_PROMPT)
    response = publish_via_page(ops, name, changed.replace("\n", "\r\n"), before)
    assert response.status_code == 303
    after = registry.live_version(name)
    assert after != before and path.read_text() == changed
    page = ops.get(response.headers["Location"]).text
    assert f"{name} is live at version {after}" in page
    events = app.extensions["ivr_admin"].audit.recent(action="flow_published", target=name)
    assert [(e.username, e.data) for e in events] == [
        (ops.username, {"version": after, "previous": before})]


def test_broken_yaml_is_refused_with_file_line_and_the_running_version_stays(
        ops, registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    before, text = registry.live_version(name), path.read_text()
    broken = text.replace("goto: account_number", "goto: acount_number")
    response = publish_via_page(ops, name, broken, before)
    assert response.status_code == 422
    assert 'id="publish-problems"' in response.text
    assert re.search(re.escape(f"{path}:") + r"\d+: .*unknown node &#39;acount_number&#39;",
                     response.text)
    assert textarea(response.text) == broken  # the editor keeps their text
    assert path.read_text() == text and registry.live_version(name) == before


def test_uploaded_file_is_checked_like_the_textarea(ops, registry, flows_dir):
    import io

    name, path = own_flow(flows_dir, registry)
    before = registry.live_version(name)
    upload = path.read_text().replace("start: check_hours", "start: nowhere").encode()
    response = ops.post(f"/admin/flows/{name}/publish",
                        {"source": "", "base": before, "action": "publish",
                         "file": (io.BytesIO(upload), "mine.yaml")},
                        content_type="multipart/form-data")
    assert response.status_code == 422 and "nowhere" in response.text
    assert registry.live_version(name) == before


def test_a_stale_form_is_refused_and_says_someone_else_published(ops, signed_in, registry,
                                                                 flows_dir):
    name, path = own_flow(flows_dir, registry)
    base, text = registry.live_version(name), path.read_text()
    other = signed_in("ops")
    theirs = text.replace(OLD_PROMPT, "Theirs: press 1.")
    assert publish_via_page(other, name, theirs, base).status_code == 303
    mine = text.replace(OLD_PROMPT, "Mine: press 1.")
    response = publish_via_page(ops, name, mine, base)
    assert response.status_code == 409 and "someone else published" in response.text
    assert 'id="stale-diff"' in response.text and textarea(response.text) == mine
    assert path.read_text() == theirs


def test_rollback_makes_an_older_version_live_and_is_audited(ops, app, registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    first, text = registry.live_version(name), path.read_text()
    publish_via_page(ops, name, text.replace(OLD_PROMPT, NEW_PROMPT), first)
    second = registry.live_version(name)
    page = ops.get(f"/admin/flows/{name}").text
    assert 'class="inline rollback-form"' in page and ">Make live</button>" in page
    response = ops.post(f"/admin/flows/{name}/rollback", {"version": first, "base": second})
    assert response.status_code == 303
    assert registry.live_version(name) == first and path.read_text() == text
    events = app.extensions["ivr_admin"].audit.recent(action="flow_rolled_back", target=name)
    assert [(e.username, e.data) for e in events] == [
        (ops.username, {"version": first, "previous": second})]
    stale = ops.post(f"/admin/flows/{name}/rollback", {"version": second, "base": second})
    assert stale.status_code == 303 and registry.live_version(name) == first
    assert "someone else published" in ops.get(stale.headers["Location"]).text


def test_history_lists_versions_newest_first_with_who_published(ops, registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    first = registry.live_version(name)
    publish_via_page(ops, name, path.read_text().replace(OLD_PROMPT, NEW_PROMPT), first)
    second = registry.live_version(name)
    page = ops.get(f"/admin/flows/{name}").text
    rows = re.findall(r'<tr data-version="(\w+)"( data-live="1")?', page)
    assert rows == [(second, ' data-live="1"'), (first, "")]
    published_by = re.search(rf'data-version="{second}".*?class="published-by">(.*?)</td>',
                             page, re.S).group(1)
    assert f"published by <b>{ops.username}</b>" in published_by
    assert "file edit" in page  # the first version came from the file, not the web


def test_diff_defaults_to_previous_vs_live_and_shows_the_change(ops, registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    first = registry.live_version(name)
    publish_via_page(ops, name, path.read_text().replace(OLD_PROMPT, NEW_PROMPT), first)
    second = registry.live_version(name)
    page = ops.get(f"/admin/flows/{name}/diff").text
    assert f"<code>{first}</code> → <code>{second}</code>" in page
    dels = re.findall(r'data-kind="del">.*?</span>([^<]*)</div>', page)
    adds = re.findall(r'data-kind="add">.*?</span>([^<]*)</div>', page)
    assert any(OLD_PROMPT in line for line in dels)
    assert any(NEW_PROMPT in line for line in adds)
    reverse = ops.get(f"/admin/flows/{name}/diff?a={second}&b={first}").text
    assert any(NEW_PROMPT in line for line in
               re.findall(r'data-kind="del">.*?</span>([^<]*)</div>', reverse))
    assert ops.get(f"/admin/flows/{name}/diff?a={first}&b=ffffffffffffffff").status_code == 404


def test_call_in_progress_keeps_its_version_while_new_calls_hear_the_published_one(
        ops, registry, place_call):
    first = place_call("+14155550100")
    first.expect_heard(OLD_PROMPT)
    live = registry.current("company")
    response = publish_via_page(ops, "company", live.source.replace(OLD_PROMPT, NEW_PROMPT),
                                live.version)
    assert response.status_code == 303
    second = place_call("+14155550101")
    second.expect_heard(NEW_PROMPT)
    first.silence()  # the reprompt comes from the version the call started on
    assert OLD_PROMPT in first.heard_since_input[-1]
    assert NEW_PROMPT not in " ".join(first.heard_since_input)
    second.silence()
    assert NEW_PROMPT in second.heard_since_input[-1]


def test_without_vendored_mermaid_the_graph_is_its_text_in_a_pre(ops, app):
    from ivr_server.admin.assets import Vendored

    app.extensions["ivr_admin"].assets = Vendored(chart=True, mermaid=False)
    page = ops.get("/admin/flows/company").text
    assert 'id="graph-missing"' in page and "mermaid.min.js\"></script>" not in page
    assert re.search(r'id="flow-graph"[^>]*>\s*<pre class="mermaid-text">flowchart TD', page)
    app.extensions["ivr_admin"].assets = Vendored(chart=True, mermaid=True)
    page = ops.get("/admin/flows/company").text
    assert "vendor/mermaid.min.js\"></script>" in page and 'id="graph-missing"' not in page


def test_a_form_without_its_base_version_never_overwrites(ops, registry, flows_dir):
    name, path = own_flow(flows_dir, registry)
    before, text = registry.live_version(name), path.read_text()
    response = ops.post(f"/admin/flows/{name}/publish",
                        {"source": text.replace(OLD_PROMPT, NEW_PROMPT), "action": "publish"})
    assert response.status_code == 422 and "based on" in response.text
    assert ops.post(f"/admin/flows/{name}/rollback", {"version": before}).status_code == 303
    assert path.read_text() == text and registry.live_version(name) == before
