"""One projection: a convolution whose weight is multiplied by a connection mask on every call.

The effective weight is ``weight * mask``. Because the product is taken inside ``forward``,
the gradient of every masked tap is exactly zero, and a masked tap contributes exactly zero
to the output whatever an optimizer does to the raw entry (weight decay, momentum). The raw
weight also starts at zero on binary-masked taps (``mnc.lowering.fresh_weights``), so with the
usual optimizers it stays zero too.

Padding is asymmetric in general (``padding_lrtb``: left, right, top, bottom). Where it is
symmetric it is handed to the convolution itself, which saves a padded copy of the input.
A projection from a coarser grid (feedback) first repeats every source pixel ``upsample``
times along each axis (nearest neighbour), then pads and convolves.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _padding_layers(padding_lrtb: tuple[int, int, int, int]) -> tuple[nn.Module, tuple[int, int]]:
    """(explicit padding module, padding given to conv2d as (height, width))."""
    left, right, top, bottom = padding_lrtb
    if left == right and top == bottom:
        return nn.Identity(), (top, left)
    return nn.ZeroPad2d(padding_lrtb), (0, 0)


class MaskedConv2d(nn.Module):
    """Conv2d with a fixed (out, in, k, k) mask buffer multiplied into the weight.

    State: ``weight`` (raw, out x in x k x k), ``bias`` (out), ``mask`` (buffer, float32).
    ``upsample`` (not state): nearest-neighbour repeat of the input along each axis before
    the padding and convolution.
    """

    mask: Tensor

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding_lrtb: tuple[int, int, int, int] = (0, 0, 0, 0),
                 mask: Tensor | None = None, upsample: int = 1) -> None:
        super().__init__()
        if upsample < 1:
            raise ValueError(f"upsample is {upsample}, expected a whole factor >= 1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.upsample = upsample
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if mask is None:
            mask = torch.ones(shape)
        if tuple(mask.shape) != shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight shape {shape}")
        self.register_buffer("mask", mask.to(torch.float32).clone())
        left, right, top, bottom = padding_lrtb
        self.padding_lrtb = (left, right, top, bottom)
        self.pad, self.conv_padding = _padding_layers(self.padding_lrtb)

    def effective_mask(self) -> Tensor:
        """What multiplies the raw weight (fixed mask here; a learnable profile in a subclass)."""
        return self.mask

    def effective_weight(self) -> Tensor:
        return self.weight * self.effective_mask()

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample != 1:
            x = x.repeat_interleave(self.upsample, dim=-2).repeat_interleave(self.upsample, dim=-1)
        return F.conv2d(self.pad(x), self.effective_weight(), self.bias, self.stride,
                        self.conv_padding)

    def extra_repr(self) -> str:
        density = float(self.mask.count_nonzero()) / max(self.mask.numel(), 1)
        upsample = f"upsample={self.upsample}, " if self.upsample != 1 else ""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding_lrtb={self.padding_lrtb}, {upsample}"
                f"mask_density={density:.3f}")


class LearnableMaskConv2d(MaskedConv2d):
    """Masked conv whose Gaussian profile (peak and width) trains with the weights.

    Extra parameters (scalars): ``log_peak`` and ``log_sigma``; the effective mask is
    ``min(1, exp(log_peak) * exp(-r^2 / (2 exp(log_sigma)^2)))`` over the kernel taps, the
    same formula as ``mnc.masks.tap_probabilities``. The ``mask`` buffer keeps the profile the
    IR prescribed at initialisation, for reference and for backends that cannot train it.
    """

    squared_offsets: Tensor

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding_lrtb: tuple[int, int, int, int] = (0, 0, 0, 0),
                 mask: Tensor | None = None, peak_probability: float = 1.0,
                 sigma_px: float = 1.0, upsample: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding_lrtb, mask,
                         upsample)
        self.log_peak = nn.Parameter(torch.tensor(math.log(peak_probability)))
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma_px)))
        half = kernel_size // 2
        offsets = torch.arange(-half, half + 1, dtype=torch.float32)
        squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
        self.register_buffer("squared_offsets", squared, persistent=False)

    def effective_mask(self) -> Tensor:
        variance = torch.exp(2 * self.log_sigma)
        profile = torch.exp(self.log_peak - self.squared_offsets / (2 * variance))
        return torch.clamp(profile, max=1.0).expand_as(self.mask)
