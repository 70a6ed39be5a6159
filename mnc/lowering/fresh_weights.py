"""Fresh (untrained) weights of a network: one definition from (IR, seed) for every backend.

Each tensor that is drawn has a numpy stream of its own, seeded by the seed and the layer's
name (salted apart from the mask streams of ``mnc.masks``), so editing one projection never
changes the initial weights of the others, and the torch module and the ONNX export of one
spec start from the same network.

- Convolutions: He-normal initialisation of the effective weight ``weight * mask``, counting
  only the taps the mask keeps: a unit sums about ``sum(mask^2) / out_channels`` weighted
  inputs (about 4 % of a dense kernel for the default spec), so a dense fan-in would make
  activations far too small. So every projection starts adding about the same variance to
  its target's drive. With ``interareal.feedback_share`` ``f``, a target's delayed
  interareal (feedback) projections instead start with ``f`` of its drive variance together:
  each one's He weight is scaled by ``sqrt(f / (1 - f) * n0 * strength / strength_total)``,
  ``n0`` the target's delay-0 projections (none: no scaling), the strengths those of its
  delayed sources. With a binary mask (modes ``gaussian`` and ``none``) the raw
  weight is zero on masked taps, so it starts, and with a zero gradient there stays, zero.
  Biases are zero; in the ``learnable`` mode the profile starts at the IR's peak and width.
- BatchNorm at identity: weight 1, bias 0, running mean 0, running variance 1, no batches.
- Classifier: weight ~ U(-1/sqrt(features), 1/sqrt(features)), bias 0.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import numpy as np

from mnc.ir.model import IR, InterarealProfile, Projection
from mnc.lowering.weights_format import (
    NORM_FIELDS,
    conv_name,
    norm_name,
    norm_shape,
    normalised_populations,
)
from mnc.masks import projection_mask

INIT_STREAM = 1
"""Third word of every initialisation stream's seed (the mask streams have two words)."""


def init_rng(seed: int, name: str) -> np.random.Generator:
    """The stream of one layer (a projection's name, or ``classifier``)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(name.encode()), INIT_STREAM])
    return np.random.Generator(np.random.PCG64(sequence))


def conv_weight(rng: np.random.Generator, mask: np.ndarray, binary: bool,
                gain: float = 1.0) -> np.ndarray:
    """He-normal weight for the effective mask ``mask`` (out, in, k, k), times ``gain``, as
    float32."""
    mask = np.asarray(mask, dtype=np.float64)
    fan_in = max(float((mask ** 2).sum()) / mask.shape[0], 1.0)
    weight = rng.standard_normal(mask.shape) * (gain * math.sqrt(2.0 / fan_in))
    if binary:
        weight = weight * (mask != 0)
    return weight.astype(np.float32)


def feedback_gain(ir: IR, projection: Projection) -> float:
    """The initial weight scale of a projection (1 but for feedback under a feedback share,
    see the module)."""
    profile = projection.profile
    if (projection.delay == 0 or not isinstance(profile, InterarealProfile)
            or profile.feedback_share is None):
        return 1.0
    forward = sum(1 for other in ir.projections
                  if other.target == projection.target and other.delay == 0)
    if forward == 0:
        return 1.0
    share = profile.feedback_share
    return math.sqrt(share / (1 - share) * forward * profile.strength / profile.strength_total)


def fresh_weights(ir: IR, seed: int | None = None,
                  masks: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every tensor of the weights payload (``weights_format.payload_schema``), untrained.

    ``seed`` defaults to the spec's (``ir.mask.seed``); ``masks`` (by projection name)
    defaults to the IR's own masks.
    """
    seed = ir.mask.seed if seed is None else seed
    binary = ir.mask.mode in ("gaussian", "none")
    learnable = ir.mask.mode == "learnable"
    tensors: dict[str, np.ndarray] = {}
    for projection in ir.projections:
        name = conv_name(projection)
        mask = (projection_mask(ir, projection) if masks is None
                else np.asarray(masks[projection.name], dtype=np.float32))
        tensors[f"{name}.weight"] = conv_weight(init_rng(seed, projection.name), mask, binary,
                                                feedback_gain(ir, projection))
        tensors[f"{name}.bias"] = np.zeros(projection.out_channels, dtype=np.float32)
        if learnable:
            tensors[f"{name}.log_peak"] = np.array(math.log(projection.peak_probability),
                                                   dtype=np.float32)
            tensors[f"{name}.log_sigma"] = np.array(math.log(projection.sigma_px),
                                                    dtype=np.float32)
        tensors[f"{name}.mask"] = mask
    for population in normalised_populations(ir):
        name = norm_name(population.name)
        identity = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}
        for field in NORM_FIELDS:
            tensors[f"{name}.{field}"] = np.full(norm_shape(ir, population, field),
                                                 identity[field], dtype=np.float32)
        tensors[f"{name}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    bound = 1.0 / math.sqrt(ir.readout.features)
    shape = (ir.readout.classes, ir.readout.features)
    tensors["classifier.weight"] = init_rng(seed, "classifier").uniform(
        -bound, bound, shape).astype(np.float32)
    tensors["classifier.bias"] = np.zeros(ir.readout.classes, dtype=np.float32)
    return tensors
