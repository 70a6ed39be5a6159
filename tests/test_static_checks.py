"""The package and its backends stay lint-clean and their types check (ruff and mypy, as
configured in pyproject.toml), so a change that breaks either fails CI rather than review."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_ruff_is_clean():
    if shutil.which("ruff") is None:
        pytest.skip("ruff not installed")
    result = subprocess.run(["ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.slow
def test_mypy_passes_on_mnc_and_backends():
    pytest.importorskip("mypy")
    result = subprocess.run([sys.executable, "-m", "mypy", "mnc", "backends", "--no-incremental",
                             "--cache-dir", "/dev/null"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
