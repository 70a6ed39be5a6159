"""Connection masks drawn from the IR, shared by every backend so they agree tap for tap.

For a projection with peak p and width sigma_px, the tap at offset (dy, dx) from the kernel
centre is kept with probability min(1, p * exp(-(dx^2 + dy^2) / (2 sigma_px^2))), drawn
independently for every (out channel, in channel) pair. Each projection draws from its own
stream, seeded by the spec's seed and the projection's name, so editing one projection never
reshuffles the masks of the others.
"""

from __future__ import annotations

import zlib

import numpy as np

from mnc.ir.model import IR, Projection


def tap_probabilities(projection: Projection) -> np.ndarray:
    """(k, k) probability that each tap is kept (the expected mask)."""
    half = projection.kernel_size // 2
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    profile = projection.peak_probability * np.exp(-squared / (2 * projection.sigma_px**2))
    return np.minimum(profile, 1.0)


def projection_rng(seed: int, projection: Projection) -> np.random.Generator:
    stream = zlib.crc32(projection.name.encode())
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))


def draw_mask(projection: Projection, seed: int) -> np.ndarray:
    """(out, in, k, k) float32 binary mask of one projection."""
    probabilities = tap_probabilities(projection)
    shape = (projection.out_channels, projection.in_channels, *probabilities.shape)
    uniform = projection_rng(seed, projection).random(shape, dtype=np.float64)
    return (uniform < probabilities).astype(np.float32)


def projection_mask(ir: IR, projection: Projection) -> np.ndarray:
    """The mask a projection's weight is multiplied by, for the IR's mask mode.

    gaussian: binary draw; none: all ones; expected and learnable: the tap probabilities
    broadcast over channel pairs (learnable backends start from this and train the profile).
    """
    mode = ir.mask.mode
    shape = (
        projection.out_channels,
        projection.in_channels,
        projection.kernel_size,
        projection.kernel_size,
    )
    if mode == "gaussian":
        return draw_mask(projection, ir.mask.seed)
    if mode == "none":
        return np.ones(shape, dtype=np.float32)
    return np.broadcast_to(tap_probabilities(projection).astype(np.float32), shape).copy()


def all_masks(ir: IR) -> dict[str, np.ndarray]:
    return {projection.name: projection_mask(ir, projection) for projection in ir.projections}
