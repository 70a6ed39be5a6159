"""Inference-mode BatchNorm as an affine map, the rule every folding backend applies.

In inference ``BN(z) = gamma (z - running_mean) / sqrt(running_var + eps) + beta``, which is
``z * scale + shift`` with ``scale = gamma / sqrt(running_var + eps)`` and
``shift = beta - scale * running_mean``. A recurrent network keeps running statistics per step
(``(steps, C)``), so its folding is per step. Folded into the convolutions feeding a population,
``scale`` multiplies every weight and bias of each output channel and ``shift`` is added once,
to the bias of the population's *carrier*: the incoming projection with the smallest delay
(first in IR order), which is present at every step at which any input is (delayed inputs are
absent before their first step). A population none of whose inputs is present yet rests at
``ReLU(BN(0)) = ReLU(shift)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mnc.ir.model import IR, Projection
from mnc.lowering.weights_format import conv_name, norm_name

BATCH_NORM_EPS = 1e-5
"""torch.nn.BatchNorm2d's default eps, which the torch backend keeps."""


def fold_batchnorm(gamma: ArrayLike, beta: ArrayLike, running_mean: ArrayLike,
                   running_var: ArrayLike, eps: float = BATCH_NORM_EPS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) per channel, in float64, with ``BN(z) == z * scale + shift``."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(running_var, np.float64) + eps)
    return scale, np.asarray(beta, np.float64) - scale * np.asarray(running_mean, np.float64)


@dataclass(frozen=True)
class FoldedProjection:
    weight: np.ndarray
    """(out, in, k, k) float64: weight * mask * the target's BatchNorm scale."""
    bias: np.ndarray
    """(out,) float64: bias * scale, plus the target's shift on its carrier."""


def carrier(ir: IR, population: str) -> Projection:
    """The projection into ``population`` whose bias carries its BatchNorm shift."""
    incoming = [projection for projection in ir.projections if projection.target == population]
    return min(incoming, key=lambda projection: projection.delay)


def step_statistics(value: ArrayLike, step: int) -> np.ndarray:
    """A running statistic at ``step``: its row of a per-step ``(steps, C)`` array, or the
    ``(C,)`` array shared by every step (feed-forward networks, the earlier format)."""
    array = np.asarray(value)
    return array[step] if array.ndim == 2 else array


def population_batchnorm(tensors: Mapping[str, np.ndarray], population: str,
                         eps: float = BATCH_NORM_EPS, step: int = 0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of a population's BatchNorm at ``step`` from tensors under the
    contract's names."""
    name = norm_name(population)
    return fold_batchnorm(tensors[f"{name}.weight"], tensors[f"{name}.bias"],
                          step_statistics(tensors[f"{name}.running_mean"], step),
                          step_statistics(tensors[f"{name}.running_var"], step), eps)


def fold_projections(ir: IR, tensors: Mapping[str, np.ndarray], eps: float = BATCH_NORM_EPS,
                     step: int = 0) -> dict[str, FoldedProjection]:
    """Every projection's masked weight and bias with its target's BatchNorm (its statistics
    at ``step``) folded in, by projection name, from tensors under the contract's names
    (masks included)."""
    norms = {population: population_batchnorm(tensors, population, eps, step)
             for population in {projection.target for projection in ir.projections}}
    carriers = {carrier(ir, population).name for population in norms}
    folded = {}
    for projection in ir.projections:
        key = conv_name(projection)
        scale, shift = norms[projection.target]
        weight = (np.asarray(tensors[f"{key}.weight"], np.float64)
                  * np.asarray(tensors[f"{key}.mask"], np.float64) * scale[:, None, None, None])
        bias = np.asarray(tensors[f"{key}.bias"], np.float64) * scale
        if projection.name in carriers:
            bias = bias + shift
        folded[projection.name] = FoldedProjection(weight, bias)
    return folded


def masked_projections(ir: IR, tensors: Mapping[str, np.ndarray]
                       ) -> dict[str, FoldedProjection]:
    """Every projection's ``weight * mask`` and bias with no BatchNorm folded in: for a
    network with per-step statistics, whose BatchNorm is applied after the sum, per step."""
    masked = {}
    for projection in ir.projections:
        key = conv_name(projection)
        weight = (np.asarray(tensors[f"{key}.weight"], np.float64)
                  * np.asarray(tensors[f"{key}.mask"], np.float64))
        masked[projection.name] = FoldedProjection(
            weight, np.asarray(tensors[f"{key}.bias"], np.float64))
    return masked
