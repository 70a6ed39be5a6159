"""Fixtures of the ONNX backend tests: a small compiled IR shared by the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnc.ir.model import IR
from tests.backends.onnx.helpers import write_small_spec
from tests.conftest import run_mnc

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def small_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_spec(tmp_path_factory.mktemp("specs"))


@pytest.fixture(scope="session")
def small_ir(small_spec: Path) -> IR:
    import mnc

    return mnc.compile_ir(small_spec)


@pytest.fixture(scope="session")
def small_onnx(small_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small spec exported by the real command line (tests copy it before editing)."""
    path = tmp_path_factory.mktemp("exported") / "small.onnx"
    result = run_mnc("compile", str(small_spec), "--backend", "onnx", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path
