"""pyproject.toml lists every package folder, so a clean install ships all of the code."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("mnc", "mnc"), ("backends", "mnc_backends")):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *parts)))
    assert found == listed


def test_mnc_does_not_import_torch_or_onnx_at_module_level():
    for path in (ROOT / "mnc").rglob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("import torch", "from torch", "import onnx", "from onnx")):
                raise AssertionError(f"{path} imports a backend library at module level")
