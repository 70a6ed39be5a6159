"""Masked taps stay exactly zero in the effective weight whatever the optimizer does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from mnc_backends.torch import MouseNet

pytestmark = pytest.mark.torch

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd-momentum-decay": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9,
                                                         weight_decay=1e-2, nesterov=True),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1),
    "adam-l2": lambda params: torch.optim.Adam(params, lr=1e-2, weight_decay=1e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_masked_taps_stay_zero_after_optimizer_steps(tiny_ir, name: str) -> None:
    model = MouseNet(tiny_ir).train()
    before = {key: conv.weight.detach().clone() for key, conv in model.convs.items()}
    optimizer = OPTIMIZERS[name](model.parameters())
    generator = torch.Generator().manual_seed(1)
    shape = (8, tiny_ir.input.channels, tiny_ir.input.height, tiny_ir.input.width)
    for _ in range(3):
        images = torch.randn(*shape, generator=generator)
        labels = torch.randint(0, tiny_ir.readout.classes, (8,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        for conv in model.convs.values():  # the gradient itself is zero on masked taps
            assert torch.count_nonzero(conv.weight.grad[conv.mask == 0]) == 0
        optimizer.step()
    moved = masked_total = 0
    for key, conv in model.convs.items():
        masked = conv.mask == 0
        masked_total += int(masked.sum())
        effective = model.effective_weight(key)
        assert torch.count_nonzero(effective[masked]) == 0, key
        assert torch.count_nonzero(conv.weight[masked]) == 0, key  # raw weight too
        moved += int((conv.weight != before[key])[~masked].sum())
    assert masked_total > 0 and moved > 0  # there are masked taps, and kept taps trained
