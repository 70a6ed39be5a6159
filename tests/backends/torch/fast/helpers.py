"""Models shared by the fast-strategy tests: one compiled network per spec, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mnc.compiler import compile_ir  # noqa: E402
from mnc_backends.torch.fast.bench import randomise_statistics  # noqa: E402
from mnc_backends.torch.module import MouseNet  # noqa: E402
from mnc_backends.torch.reference import ReferenceMouseNet  # noqa: E402

_CACHE: dict[str, tuple[MouseNet, ReferenceMouseNet]] = {}


def model_pair(spec: Path) -> tuple[MouseNet, ReferenceMouseNet]:
    """(MouseNet with non-trivial BN statistics and biases, reference with the same state)."""
    key = str(spec)
    if key not in _CACHE:
        ir = compile_ir(spec)
        model = MouseNet(ir)
        randomise_statistics(model, seed=3)
        reference = ReferenceMouseNet(ir)
        reference.load_state_dict(model.state_dict())
        _CACHE[key] = (model.eval(), reference.eval())
    model, reference = _CACHE[key]
    model.set_strategy("auto").eval()
    reference.eval()
    return model, reference


def images_for(model: MouseNet, batch: int, seed: int = 0) -> torch.Tensor:
    shape = model.ir.input
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, shape.channels, shape.height, shape.width, generator=generator)
