"""Connection masks drawn from the IR, shared by every backend so they agree tap for tap.

For a projection with peak p and width sigma_px, the tap at offset (dy, dx) from the kernel
centre is kept with probability min(1, p * exp(-(dx^2 + dy^2) / (2 sigma_px^2))), drawn
independently for every (out channel, in channel) pair. Each projection draws from its own
stream, seeded by the spec's seed and the projection's name, so editing one projection never
reshuffles the masks of the others.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from mnc.errors import UserFileError
from mnc.ir.model import IR, Projection


def gaussian_profile(kernel_size: int, peak: float, sigma_px: float) -> np.ndarray:
    """(k, k) float64 min(1, peak * exp(-r^2 / (2 sigma^2))) at every tap (r from the centre)."""
    half = kernel_size // 2
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return np.minimum(peak * np.exp(-squared / (2 * sigma_px**2)), 1.0)


def tap_probabilities(projection: Projection) -> np.ndarray:
    """(k, k) probability that each tap is kept (the expected mask)."""
    return gaussian_profile(projection.kernel_size, projection.peak_probability,
                            projection.sigma_px)


def learned_mask(kernel_size: int, log_peak: float, log_sigma: float) -> np.ndarray:
    """(k, k) effective mask of a learnable-mask conv from its trained ``log_peak`` and
    ``log_sigma`` (the torch backend's parameters)."""
    return gaussian_profile(kernel_size, float(np.exp(log_peak)), float(np.exp(log_sigma)))


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


PROBABILITY_TOLERANCE = 1e-6
"""How far a stored probability mask (``expected``, ``learnable``) may be from the IR's: the
float32 rounding of the same float64 formula, with room for a last-bit difference in exp."""


def mask_problems(ir: IR, masks: Mapping[str, np.ndarray]) -> list[str]:
    """How the masks read from a file (by projection name) differ from those the IR prescribes.

    Masks are fixed by the IR (mode, seed, profile) and never trained, so a file's masks must
    be exactly the IR's: binary draws (``gaussian``, ``none``) tap for tap, probability masks
    (``expected``, and ``learnable``'s initial profile) to float32 rounding. Projections
    absent from ``masks`` are not checked.
    """
    problems = []
    for projection in ir.projections:
        if projection.name not in masks:
            continue
        found = np.asarray(masks[projection.name])
        expected = projection_mask(ir, projection)
        if found.shape != expected.shape:
            problems.append(f"{projection.name}: mask shape {found.shape}, the IR's is "
                            f"{expected.shape}")
            continue
        if ir.mask.mode in ("gaussian", "none"):
            differ = int(np.count_nonzero(found != expected))
        else:
            close = np.isclose(found, expected, rtol=PROBABILITY_TOLERANCE,
                               atol=PROBABILITY_TOLERANCE)
            differ = int(np.count_nonzero(~close))
        if differ:
            problems.append(
                f"{projection.name}: {differ} of {found.size} mask taps differ from the "
                f"{ir.mask.mode} mask of seed {ir.mask.seed} (kept taps: "
                f"{int(np.count_nonzero(found))} in the file, {int(np.count_nonzero(expected))} "
                f"from the IR)")
    return problems


def check_file_masks(ir: IR, masks: Mapping[str, np.ndarray], origin: str) -> None:
    """Raise one UserFileError naming ``origin`` and each projection whose mask differs."""
    problems = mask_problems(ir, masks)
    if problems:
        shown = "\n".join(f"  {problem}" for problem in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise UserFileError(f"{origin}: {len(problems)} connection masks are not the ones the "
                            f"IR prescribes (masks are drawn from the IR and never trained, so "
                            f"the file was edited or corrupted):\n{shown}{more}")
