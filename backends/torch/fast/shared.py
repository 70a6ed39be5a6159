"""Helpers every fast strategy shares: which inputs go to the plain path, and the weights in
the numpy form of ``mnc.lowering``.

NaN and infinity: the plain path multiplies every pixel by every tap of a dense kernel, masked
taps (zero weights) included, so NaN or infinity anywhere in an image spreads over each
kernel's whole footprint (0 * inf is NaN). The sparse kernel never reads masked taps, and
merged kernels are zero-padded to a group's widest footprint, so either would spread it
differently. Such a batch runs the plain path instead: a broken input comes out broken in the
same places.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from mnc.lowering.batchnorm import BATCH_NORM_EPS, FoldedProjection, fold_projections
from mnc.lowering.weights_format import conv_name, norm_name
from mnc_backends.torch.names import population_key, projection_key

if TYPE_CHECKING:
    from mnc_backends.torch.module import MouseNet


def all_finite(images: Tensor) -> bool:
    """Whether every pixel is finite. The sum is finite only if every pixel is (it may also
    overflow, which only costs speed): about 50 us for 16 64x64 images, 0.01 % of a call."""
    # half precision overflows at 65504: sum those in float32
    total = images.sum(dtype=torch.float32) if images.element_size() < 4 else images.sum()
    return math.isfinite(float(total))


def _array(tensor: Tensor) -> np.ndarray:
    """float64, which the folding computes in anyway: numpy has no bfloat16."""
    return tensor.detach().to("cpu", torch.float64).numpy()


def lowering_tensors(model: MouseNet) -> dict[str, np.ndarray]:
    """The module's weights, masks (a learnable profile's effective one) and BatchNorm state
    under the contract's names, float64, as ``mnc.lowering`` folds them; each norm's own eps
    (a swapped-in BatchNorm may have another) is moved into its variance, so one folding rule
    (``BATCH_NORM_EPS``) serves every population."""
    ir = model.ir
    tensors: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for projection in ir.projections:
            conv = model.convs[projection_key(projection.source, projection.target)]
            name = conv_name(projection)
            tensors[f"{name}.weight"] = _array(conv.weight)
            tensors[f"{name}.bias"] = _array(conv.bias)
            tensors[f"{name}.mask"] = _array(conv.effective_mask())
        for target in {projection.target for projection in ir.projections}:
            norm = model.norms[population_key(target)]
            mean, var = norm.running_mean, norm.running_var
            assert mean is not None and var is not None  # eval-mode BatchNorm: running stats
            name = norm_name(target)
            tensors[f"{name}.weight"] = _array(norm.weight)
            tensors[f"{name}.bias"] = _array(norm.bias)
            tensors[f"{name}.running_mean"] = _array(mean)
            tensors[f"{name}.running_var"] = (_array(var).astype(np.float64)
                                              + (norm.eps - BATCH_NORM_EPS))
    return tensors


def folded_projections(model: MouseNet, step: int = 0,
                       tensors: dict[str, np.ndarray] | None = None
                       ) -> dict[str, FoldedProjection]:
    """Every projection's weight, times its effective mask (a learnable profile included) and
    its target's eval BatchNorm scale, and its bias, with the shift on the target's carrier:
    ``mnc.lowering.batchnorm.fold_projections`` over the module's tensors (float64,
    ``lowering_tensors``, if not given), with the running statistics of ``step`` (a recurrent
    network keeps them per step)."""
    if tensors is None:
        tensors = lowering_tensors(model)
    with np.errstate(invalid="ignore"):  # a NaN or infinite weight stays NaN, quietly
        return fold_projections(model.ir, tensors, step=step)
