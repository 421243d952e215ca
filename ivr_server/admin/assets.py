"""The admin pages' JavaScript libraries, vendored: pinned in vendor_src/package-lock.json,
copied out of node_modules into static/vendor/ at build time, so no page loads code from a CDN.

    python -m ivr_server.admin.assets [build|check]    (or ./dev assets)

Standard library only: the wheel build (build_assets.py) loads this file before any of the
package's dependencies are installed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "vendor_src"  # package.json + package-lock.json; node_modules/ is git-ignored
OUT = HERE / "static" / "vendor"  # served as /admin/static/vendor/; git-ignored, built
MANIFEST = "VENDORED.json"
HINT = "run ./dev assets (or python -m ivr_server.admin.assets build)"


@dataclass(frozen=True)
class Package:
    """One npm package and what we copy out of it: vendored name -> path in node_modules."""

    name: str
    files: dict[str, str]


PACKAGES = (
    Package("chart.js", {"chart.umd.js": "chart.js/dist/chart.umd.js",
                         "chart.js.LICENSE.md": "chart.js/LICENSE.md"}),
    # bundled into chart.umd.js, so its licence travels with it
    Package("@kurkle/color", {"kurkle-color.LICENSE.md": "@kurkle/color/LICENSE.md"}),
    # the IIFE build: one self-contained file, no chunks loaded at run time (unlike the .mjs)
    Package("mermaid", {"mermaid.min.js": "mermaid/dist/mermaid.min.js",
                        "mermaid.LICENSE": "mermaid/LICENSE"}),
)


class AssetsError(RuntimeError):
    """The vendored files cannot be built, or do not match the lock."""


@dataclass(frozen=True)
class Vendored:
    """Which vendored libraries are present, so pages can say why a chart or graph is missing."""

    chart: bool = False
    mermaid: bool = False
    versions: dict[str, str] = field(default_factory=dict)  # npm package -> version

    @property
    def complete(self) -> bool:
        return self.chart and self.mermaid


def vendored(out: Path = OUT) -> Vendored:
    """Looked at once at start-up: a missing file turns its feature off, it doesn't crash."""
    manifest = _read_json(out / MANIFEST) or {}
    versions = {name: str(p.get("version", "")) for name, p in
                manifest.get("packages", {}).items() if isinstance(p, dict)}
    return Vendored(chart=(out / "chart.umd.js").is_file(),
                    mermaid=(out / "mermaid.min.js").is_file(), versions=versions)


def locked(src: Path = SRC) -> dict[str, dict[str, str]]:
    """Each vendored package's version and integrity as pinned in package-lock.json."""
    lock = _read_json(src / "package-lock.json")
    if lock is None:
        raise AssetsError(f"no readable package-lock.json in {src}")
    entries = lock.get("packages", {})
    pins = {}
    for package in PACKAGES:
        entry = entries.get(f"node_modules/{package.name}")
        if not entry or "version" not in entry:
            raise AssetsError(f"{package.name} is not in {src / 'package-lock.json'}")
        pins[package.name] = {"version": entry["version"],
                              "integrity": entry.get("integrity", "")}
    return pins


def install(npm: str = "npm", src: Path = SRC) -> None:
    """npm ci, unless node_modules already holds this lock (same stamp as ./dev's
    node_packages, so the two never reinstall for each other)."""
    lock = (src / "package-lock.json").read_bytes()
    stamp = src / "node_modules" / f".installed-{hashlib.sha1(lock).hexdigest()[:12]}"
    if stamp.exists():
        return
    exe = shutil.which(npm)
    if exe is None:
        raise AssetsError(f"npm not found ({npm!r}): the admin pages' charts and flow graphs "
                          "need Node.js 18.20+ and npm at build time")
    print(f"installing npm packages in {src} (npm ci)", file=sys.stderr)
    try:
        subprocess.run([exe, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=src, check=True)
    except subprocess.CalledProcessError as e:
        raise AssetsError(f"npm ci failed in {src} (exit {e.returncode})") from e
    stamp.touch()


def build(npm: str = "npm", src: Path = SRC, out: Path = OUT) -> dict:
    """Install the locked packages, copy their files into out/ and write the manifest last,
    so a half-finished build never looks complete to check()."""
    pins = locked(src)
    install(npm, src)
    modules = src / "node_modules"
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    files = {}
    for package in PACKAGES:
        installed = _read_json(modules / package.name / "package.json") or {}
        if installed.get("version") != pins[package.name]["version"]:
            raise AssetsError(f"node_modules has {package.name} {installed.get('version')}, "
                              f"the lock pins {pins[package.name]['version']}: "
                              f"delete {modules} and build again")
        for name, path in package.files.items():
            shutil.copyfile(modules / path, out / name)
            files[name] = {"package": package.name, "sha256": _sha256(out / name),
                           "bytes": (out / name).stat().st_size}
    for stale in out.iterdir():  # left by an older build whose list differed
        if stale.is_file() and stale.name not in files:
            stale.unlink()
    manifest = {"comment": "written by ivr_server/admin/assets.py from "
                           "vendor_src/package-lock.json; do not edit",
                "packages": pins, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def check(src: Path = SRC, out: Path = OUT) -> list[str]:
    """What is wrong with the vendored files (empty: they match the manifest and the lock)."""
    manifest = _read_json(out / MANIFEST)
    if manifest is None:
        return [f"no {MANIFEST} in {out}: the assets were never built"]
    problems = []
    built = manifest.get("packages", {})
    for name, pin in locked(src).items():
        version = built.get(name, {}).get("version")
        if version != pin["version"]:
            problems.append(f"{name}: built from {version}, the lock pins {pin['version']}")
    listed = manifest.get("files", {})
    for package in PACKAGES:
        for name in package.files:
            path, want = out / name, listed.get(name, {}).get("sha256")
            if not path.is_file():
                problems.append(f"{name}: missing from {out}")
            elif want is None:
                problems.append(f"{name}: not in {MANIFEST}")
            elif _sha256(path) != want:
                problems.append(f"{name}: sha256 differs from {MANIFEST} (edited by hand?)")
    return problems


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "build"
    if command not in ("build", "check") or len(args) > 1:
        print("usage: python -m ivr_server.admin.assets [build|check]", file=sys.stderr)
        return 2
    try:
        if command == "build":
            manifest = build()
            for name, f in manifest["files"].items():
                pin = manifest["packages"][f["package"]]
                print(f"{OUT / name}  {f['package']} {pin['version']}  {f['bytes']:,} bytes")
            return 0
        problems = check()
    except AssetsError as e:
        print(f"assets: {e}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"assets: {problem}", file=sys.stderr)
    if problems:
        print(f"assets: {HINT}", file=sys.stderr)
        return 1
    print(f"assets: {OUT} matches {MANIFEST} and the lock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
