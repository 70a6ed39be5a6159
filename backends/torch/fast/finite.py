"""Which inputs the fast strategies hand to the plain path so NaN and infinity spread alike.

The plain path multiplies every pixel by every tap of a dense kernel, masked taps (zero
weights) included, so NaN or infinity anywhere in an image spreads over each kernel's whole
footprint (0 * inf is NaN). The sparse kernel never reads masked taps, and merged kernels are
zero-padded to a group's widest footprint, so either would spread it differently. Such a
batch runs the plain path instead: a broken input comes out broken in the same places.
"""

from __future__ import annotations

import math

from torch import Tensor


def all_finite(images: Tensor) -> bool:
    """Whether every pixel is finite. The sum is finite only if every pixel is (it may also
    overflow, which only costs speed): about 50 us for 16 64x64 images, 0.01 % of a call."""
    return math.isfinite(float(images.sum()))
