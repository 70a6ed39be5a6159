"""Fixtures of the ONNX backend tests: a small compiled IR shared by the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnc.ir.model import IR
from tests.backends.onnx.helpers import write_small_spec

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def small_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_spec(tmp_path_factory.mktemp("specs"))


@pytest.fixture(scope="session")
def small_ir(small_spec: Path) -> IR:
    import mnc

    return mnc.compile_ir(small_spec)
