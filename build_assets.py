"""setuptools hook (pyproject's [tool.setuptools.cmdclass]): building a wheel vendors the admin
pages' JS libraries into ivr_server/admin/static/vendor/ first, so the wheel carries them.

Editable installs (./dev's pip install -e .) skip it: ./dev builds the assets itself. Without
npm the wheel is still built, with a warning: the pages then say that charts are off.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from setuptools.command.build_py import build_py

ASSETS = Path(__file__).resolve().parent / "ivr_server" / "admin" / "assets.py"
VENDOR = "ivr_server.admin.static.vendor"


def _assets() -> ModuleType:
    """assets.py by path: importing the package would need Flask, absent from the build env."""
    spec = importlib.util.spec_from_file_location("_ivr_admin_assets", ASSETS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


class BuildPyWithAssets(build_py):
    def run(self) -> None:
        if not self.editable_mode:
            assets = _assets()
            try:
                assets.build()
            except (assets.AssetsError, OSError) as e:
                if assets.check():
                    print(f"WARNING: the wheel has no vendored JS (charts and flow graphs "
                          f"off): {e}", file=sys.stderr)
            # static/vendor/ may be new since setuptools listed the packages: add it, and
            # forget the data files listed before it existed
            if VENDOR not in (self.packages or []) and (ASSETS.parent / "static/vendor").is_dir():
                self.packages = [*(self.packages or []), VENDOR]
            self.__dict__.pop("data_files", None)
        super().run()
