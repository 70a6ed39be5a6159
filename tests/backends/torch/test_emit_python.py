"""`--emit python`: standalone, readable source that builds the same module."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from mnc_backends.torch import MouseNet
from mnc_backends.torch.emit_python import emit_python
from mnc_backends.torch.weights_io import save_model
from tests.recurrent_irs import inputs_for, randomised, with_recurrence

pytestmark = pytest.mark.torch


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("which", ["default", "tiny-learnable"])
def test_emitted_module_matches_the_compiled_one(which: str, default_ir, tiny_ir, ir_editor,
                                                 tmp_path: Path) -> None:
    ir = default_ir if which == "default" else ir_editor(tiny_ir, mode="learnable")
    path = tmp_path / f"net_{which.replace('-', '_')}.py"
    path.write_text(emit_python(ir))
    emitted = _import(path, path.stem).MouseNet()
    model = MouseNet(ir)
    assert list(emitted.state_dict()) == list(model.state_dict())
    for name, tensor in model.state_dict().items():
        assert emitted.state_dict()[name].shape == tensor.shape, name
        if name.endswith(".mask"):  # the same masks, drawn without mnc
            assert torch.equal(emitted.state_dict()[name], tensor), name
    emitted.load_state_dict(model.state_dict())
    images = torch.randn(2, ir.input.channels, ir.input.height, ir.input.width)
    for train in (False, True):
        emitted.train(train)
        model.train(train)
        with torch.no_grad():
            torch.testing.assert_close(emitted(images), model(images), rtol=0, atol=1e-5)


@pytest.mark.parametrize("which", ["still", "clip-learnable"])
def test_emitted_recurrent_module_matches_the_compiled_one(which: str, tiny_ir, ir_editor,
                                                           tmp_path: Path) -> None:
    clip = which.startswith("clip")
    ir = with_recurrence(ir_editor(tiny_ir, mode="learnable") if clip else tiny_ir,
                         steps=3, clip=clip, readout_steps=(1, 2))
    path = tmp_path / f"net_{which.replace('-', '_')}.py"
    source = emit_python(ir)
    path.write_text(source)
    emitted = _import(path, path.stem).MouseNet()
    model = randomised(ir)
    assert list(emitted.state_dict()) == list(model.state_dict())
    emitted.load_state_dict(model.state_dict())
    images = inputs_for(ir)
    for train in (False, True):
        emitted.train(train)
        model.train(train)
        with torch.no_grad():
            # the plain path, which the emitted source writes out (the default strategy
            # is within 1e-4 of it)
            torch.testing.assert_close(emitted(images), model.plain_forward(images), rtol=0,
                                       atol=1e-5)
    with torch.no_grad():
        activity = emitted.populations(images)["VISp2/3"]
        torch.testing.assert_close(activity, model.features(images, ["VISp2/3"])["VISp2/3"],
                                   rtol=0, atol=1e-4)
    wrong = images[:, 0] if clip else images[:, None]
    with pytest.raises(ValueError, match=r"expected input of shape \(N, "):
        emitted(wrong)


def test_emitted_source_needs_no_mnc_and_reads_weight_files(tiny_ir, tmp_path: Path) -> None:
    source = emit_python(tiny_ir)
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in (node.names if isinstance(node, ast.Import) else
                              [ast.alias(node.module or "")])}
    assert imported == {"__future__", "math", "zlib", "numpy", "torch"}
    script = tmp_path / "net.py"
    script.write_text(source)
    weights = tmp_path / "net.pt"
    model = MouseNet(tiny_ir).eval()
    save_model(model, weights)
    # Run in a fresh interpreter that cannot import mnc.
    check = (
        "import sys; sys.modules['mnc'] = None; sys.modules['mnc_backends'] = None\n"
        "import torch, net\n"
        "model = net.MouseNet().eval()\n"
        f"model.load_state_dict(net.load_state_dict({str(weights)!r}))\n"
        f"torch.manual_seed(0); x = torch.randn(2, 3, {tiny_ir.input.height}, "
        f"{tiny_ir.input.width})\n"
        "torch.save(model(x).detach(), 'out.pt')\n")
    subprocess.run([sys.executable, "-c", check], cwd=tmp_path, check=True, timeout=120)
    torch.manual_seed(0)
    images = torch.randn(2, 3, tiny_ir.input.height, tiny_ir.input.width)
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt", weights_only=True), expected,
                               rtol=0, atol=1e-5)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
@pytest.mark.parametrize("which", ["default", "recurrent-learnable"])
def test_emitted_source_is_lint_clean(which: str, default_ir, tiny_ir, ir_editor,
                                      tmp_path: Path) -> None:
    ir = default_ir if which == "default" else with_recurrence(
        ir_editor(tiny_ir, mode="learnable"), clip=True)
    path = tmp_path / "mousenet_model.py"
    path.write_text(emit_python(ir))
    result = subprocess.run(["ruff", "check", "--isolated", "--line-length", "100",
                             "--select", "E,F,W,I,B,UP", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
