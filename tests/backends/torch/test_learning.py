"""The compiled network can be optimised: gradients reach every projection's weights and a few
Adam steps on a fixed batch of digits cut the loss. (Learning that generalises, through the
whole training loop, is tests/training/test_training.py's digits test.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mnc_backends.torch import MouseNet

pytestmark = pytest.mark.torch

STEPS = 8
"""Adam steps on one batch of 16 digits. Measured: the loss falls from 2.3 to about 0.2
(torch 2.13 CPU, seed 0); we require it to fall below a quarter of where it started."""


def _digits(count: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()  # bundled with scikit-learn, no download
    images = torch.tensor(digits.images[:count], dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    images = (images - images.mean()) / images.std()
    return images.repeat(1, 3, 1, 1), torch.tensor(digits.target[:count])


def test_gradients_reach_every_projection_and_steps_cut_the_loss(tiny_ir, ir_editor) -> None:
    ir = tiny_ir if tiny_ir.readout.classes == 10 else ir_editor(tiny_ir, classes=10)
    images, labels = _digits(16, ir.input.height, ir.input.width)
    torch.manual_seed(0)
    model = MouseNet(ir).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        if step == 0:
            silent = [p.name for p in ir.projections
                      if not model.conv(p.name).weight.grad.abs().sum() > 0]
            assert not silent, f"no gradient reaches {silent}"
        optimizer.step()
        losses.append(loss.item())
    print(f"loss on one batch of 16 digits: {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert losses[-1] < losses[0] / 4, losses
