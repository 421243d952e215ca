"""The admin pages' JS libraries are vendored from the npm lock, served by us, and never from a
CDN (./dev test builds them before the suite runs)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from flask import Flask, url_for

from ivr_server.admin import assets

ADMIN = Path(assets.__file__).resolve().parent
LIBRARIES = {"chart.umd.js": "chart.js", "mermaid.min.js": "mermaid"}
# a URL with a host in an attribute or CSS/JS import: a CDN, or anything fetched from elsewhere
EXTERNAL = re.compile(r"""(?:\b(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*"""
                      r"""|\burl\(\s*["']?|@import\s+["']?|\b(?:import|from)\s*\(?\s*["'])"""
                      r"""(?:https?:)?//""", re.IGNORECASE)


def test_the_vendored_files_match_the_manifest_and_the_lock():
    assert assets.check() == []
    lock = json.loads((assets.SRC / "package-lock.json").read_text())["packages"]
    manifest = json.loads((assets.OUT / assets.MANIFEST).read_text())
    for name, package in LIBRARIES.items():
        assert (assets.OUT / name).stat().st_size > 100_000
        pinned = lock[f"node_modules/{package}"]["version"]
        assert manifest["packages"][package]["version"] == pinned
        assert manifest["files"][name]["package"] == package
    found = assets.vendored()
    assert found.chart and found.mermaid and found.complete
    assert found.versions["chart.js"].startswith("4.")
    assert found.versions["mermaid"].startswith("11.")


def test_package_json_pins_exact_versions():
    package = json.loads((assets.SRC / "package.json").read_text())
    assert package["private"] is True
    for version in package["dependencies"].values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), version


def test_check_reports_an_edited_or_missing_file(tmp_path: Path):
    out = tmp_path / "vendor"
    shutil.copytree(assets.OUT, out)
    assert assets.check(out=out) == []
    (out / "chart.umd.js").write_text("window.Chart = 'from somewhere else';")
    (out / "mermaid.min.js").unlink()
    problems = assets.check(out=out)
    assert any("chart.umd.js: sha256 differs" in p for p in problems), problems
    assert any("mermaid.min.js: missing" in p for p in problems), problems
    assert assets.vendored(out) == assets.Vendored(chart=True, mermaid=False,
                                                   versions=assets.vendored().versions)
    assert assets.main(["check"]) == 0
    assert assets.main(["nonsense"]) == 2


def test_nothing_vendored_turns_the_features_off_without_failing(tmp_path: Path):
    found = assets.vendored(tmp_path / "never-built")
    assert not found.chart and not found.mermaid and not found.complete
    assert found.versions == {}
    assert assets.check(out=tmp_path / "never-built") != []


def test_no_page_or_script_of_ours_loads_anything_from_another_host():
    ours = [p for p in (ADMIN / "templates").rglob("*") if p.is_file()]
    ours += [p for p in (ADMIN / "static").rglob("*")
             if p.is_file() and assets.OUT not in p.parents]
    assert any(p.suffix == ".html" for p in ours)
    offenders = [f"{p.relative_to(ADMIN)}: {m.group(0)}" for p in ours
                 for m in EXTERNAL.finditer(p.read_text(errors="replace"))]
    assert offenders == []


def test_the_pattern_would_catch_a_cdn():
    for line in ('<script src="https://cdn.jsdelivr.net/npm/chart.js"></script>',
                 "<link rel=stylesheet href=//unpkg.com/x.css>",
                 "@import url('https://fonts.googleapis.com/css');",
                 'import mermaid from "https://cdn.jsdelivr.net/npm/mermaid.esm.min.mjs";'):
        assert EXTERNAL.search(line), line
    assert not EXTERNAL.search("<script src=\"{{ url_for('admin.static', "
                               "filename='vendor/chart.umd.js') }}\"></script>")


def test_the_vendored_files_are_served_to_anyone(app: Flask):
    client = app.test_client()  # signed out: static files are public
    for name in LIBRARIES:
        response = client.get(f"/admin/static/vendor/{name}")
        assert response.status_code == 200
        assert "javascript" in response.mimetype
        assert response.data == (assets.OUT / name).read_bytes()
        response.close()
    assert app.extensions["ivr_admin"].assets.complete
    with app.test_request_context():
        assert url_for("admin.static", filename="vendor/chart.umd.js") == \
            "/admin/static/vendor/chart.umd.js"
