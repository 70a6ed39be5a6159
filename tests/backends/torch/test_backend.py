"""The registry entry: found by name, compiles, saves (model or Python), describes, loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mnc
from mnc.backend import BackendOptions, get_backend
from mnc.errors import BackendError
from mnc_backends.torch import MouseNet, TorchBackend

pytestmark = pytest.mark.torch


def test_registry_finds_the_torch_backend() -> None:
    backend = get_backend("torch")
    assert isinstance(backend, TorchBackend)
    assert (backend.name, backend.suffix, backend.emits) == ("torch", ".pt", ("python",))


def test_mnc_compile_returns_a_module(tiny_ir) -> None:
    model = mnc.compile(tiny_ir, backend="torch")
    assert isinstance(model, MouseNet) and isinstance(model, torch.nn.Module)
    description = get_backend("torch").describe(model)
    assert tiny_ir.short_hash in description and "projections" in description


def test_save_writes_python_source_when_asked(tiny_ir, tmp_path: Path) -> None:
    backend = get_backend("torch")
    path = tmp_path / "net.py"
    backend.save(backend.compile(tiny_ir, BackendOptions()), path, BackendOptions(emit="python"))
    source = path.read_text()
    assert "class MouseNet(nn.Module)" in source and tiny_ir.content_hash in source
    compile(source, str(path), "exec")


def test_user_mistakes_raise_backend_errors(tiny_ir, tmp_path: Path) -> None:
    backend = get_backend("torch")
    model = backend.compile(tiny_ir, BackendOptions())
    with pytest.raises(BackendError, match="cannot emit 'onnx'"):
        backend.save(model, tmp_path / "x", BackendOptions(emit="onnx"))
    with pytest.raises(BackendError, match="no option 'colour'"):
        backend.compile(tiny_ir, BackendOptions(extra={"colour": "blue"}))
    with pytest.raises(BackendError, match="output 'VISx5' is not a population"):
        backend.compile(tiny_ir, BackendOptions(outputs=("VISx5",)))
    assert not list(tmp_path.iterdir())
