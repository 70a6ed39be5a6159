"""A stride-2 convolution equals a stride-1 one over the phase images (pixel_unshuffle)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from mnc.lowering.merged import Member, MergedGroup  # noqa: E402
from mnc_backends.torch.fast.merged import phase_split_weight  # noqa: E402

pytestmark = pytest.mark.torch


def _group(kernel: int, padding_lrtb: tuple[int, int, int, int]) -> MergedGroup:
    member = Member("a->b", "b", 0, 4, kernel, 0, 0, 0, 0, padding_lrtb)
    return MergedGroup("a", 2, 3, kernel, kernel, padding_lrtb, (member,))


@pytest.mark.parametrize(("kernel", "padding_lrtb", "size"), [
    (21, (10, 9, 10, 9), 64), (19, (9, 8, 9, 8), 32), (3, (1, 1, 1, 1), 10), (4, (1, 2, 2, 1), 12),
    (1, (0, 0, 0, 0), 8), (5, (3, 0, 0, 4), 6), (2, (0, 0, 0, 0), 14)])
def test_phase_split_equals_the_strided_convolution(kernel, padding_lrtb, size):
    generator = torch.Generator().manual_seed(kernel)
    weight = torch.randn(4, 3, kernel, kernel, dtype=torch.float64, generator=generator)
    images = torch.randn(2, 3, size, size, dtype=torch.float64, generator=generator)
    expected = F.conv2d(F.pad(images, padding_lrtb), weight, stride=2)
    split = _group(kernel, padding_lrtb).phase_split(size, size)
    assert split is not None
    got = F.conv2d(F.pad(F.pixel_unshuffle(images, 2), split.padding_lrtb),
                   phase_split_weight(weight, split))
    assert got.shape[-2] >= expected.shape[-2] and got.shape[-1] >= expected.shape[-1]
    got = got[..., :expected.shape[-2], :expected.shape[-1]]
    assert float((got - expected).abs().max()) < 1e-12


def test_phase_split_applies_to_stride_two_over_even_grids_only():
    group = _group(5, (2, 2, 2, 2))
    assert group.phase_split(9, 10) is None and group.phase_split(10, 9) is None
    stride_one = MergedGroup("a", 1, 3, 5, 5, (2, 2, 2, 2), group.members)
    assert stride_one.phase_split(10, 10) is None
