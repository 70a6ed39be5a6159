"""Fold masks and inference-mode BatchNorm into the convolutions feeding each population.

A population computes ReLU(BN(sum_i conv_i(x_i))) with conv_i(x) = (W_i * M_i) x + b_i and,
in inference, BN(z) = s (z - mean) + beta with s = gamma / sqrt(running_var + eps). So

    BN(sum_i conv_i(x_i)) = sum_i [(s W_i M_i) x_i + s b_i] + (beta - s mean)

every incoming convolution gets weight s * W_i * M_i and bias s * b_i, and the shift
beta - s mean is added once, to the first incoming convolution's bias. Arithmetic in float64;
(s, shift) is ``mnc.lowering.batchnorm.fold_batchnorm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnc.ir.model import IR, Projection
from mnc.lowering.batchnorm import BATCH_NORM_EPS, fold_batchnorm

from .parameters import Parameters, conv_name, norm_name

__all__ = ["BATCH_NORM_EPS", "FoldedConv", "fold_population"]


@dataclass(frozen=True)
class FoldedConv:
    projection: Projection
    weight: np.ndarray
    """(out, in, k, k) float64: mask, BatchNorm scale and all applied."""
    bias: np.ndarray
    """(out,) float64."""


def fold_population(ir: IR, population: str, parameters: Parameters,
                    eps: float = BATCH_NORM_EPS) -> list[FoldedConv]:
    """The folded convolutions into one population, in the IR's projection order."""
    incoming = [projection for projection in ir.projections if projection.target == population]
    norm = norm_name(population)
    scale, shift = fold_batchnorm(parameters[f"{norm}.weight"], parameters[f"{norm}.bias"],
                                  parameters[f"{norm}.running_mean"],
                                  parameters[f"{norm}.running_var"], eps)
    folded = []
    for index, projection in enumerate(incoming):
        key = conv_name(projection)
        weight = (parameters[f"{key}.weight"].astype(np.float64)
                  * parameters[f"{key}.mask"].astype(np.float64)
                  * scale[:, None, None, None])
        bias = parameters[f"{key}.bias"].astype(np.float64) * scale
        if index == 0:
            bias = bias + shift
        folded.append(FoldedConv(projection, weight, bias))
    return folded
