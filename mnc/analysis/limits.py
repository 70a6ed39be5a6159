"""Size guard: refuse a network too large to build, before anything is allocated.

Limits come from the caller, else the environment (MNC_MAX_PARAMETERS,
MNC_MAX_ACTIVATION_MB, MNC_MAX_KERNEL_SIZE), else the defaults below, which admit MouseNet
at 224x224 input with room to spare.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mnc.errors import SizeLimitError
from mnc.ir.model import IR

DEFAULT_MAX_PARAMETERS = 500_000_000
DEFAULT_MAX_ACTIVATION_MB = 2048.0
DEFAULT_MAX_KERNEL_SIZE = 1025


@dataclass(frozen=True)
class Limits:
    max_parameters: int = DEFAULT_MAX_PARAMETERS
    max_activation_mb: float = DEFAULT_MAX_ACTIVATION_MB
    """Activation memory of one image (float32), summed over populations."""
    max_kernel_size: int = DEFAULT_MAX_KERNEL_SIZE

    @classmethod
    def from_environment(cls) -> Limits:
        def read(name: str, default: float, kind: type) -> float:
            text = os.environ.get(name)
            if text is None:
                return default
            try:
                value = kind(text)
            except ValueError:
                raise SizeLimitError(
                    f"environment variable {name}={text!r}: expected a positive {kind.__name__}"
                ) from None
            if value <= 0:
                raise SizeLimitError(
                    f"environment variable {name}={text!r}: expected a positive number"
                )
            return value

        return cls(
            int(read("MNC_MAX_PARAMETERS", DEFAULT_MAX_PARAMETERS, int)),
            read("MNC_MAX_ACTIVATION_MB", DEFAULT_MAX_ACTIVATION_MB, float),
            int(read("MNC_MAX_KERNEL_SIZE", DEFAULT_MAX_KERNEL_SIZE, int)),
        )


def check_limits(ir: IR, limits: Limits | None = None) -> None:
    """Raise SizeLimitError naming the figures and how to raise the limit."""
    limits = limits or Limits.from_environment()
    problems = []
    for projection in ir.projections:
        if projection.kernel_size > limits.max_kernel_size:
            problems.append(
                f"projection {projection.name} has a {projection.kernel_size}x"
                f"{projection.kernel_size} kernel (sigma_px {projection.sigma_px:.4g}); the limit"
                f" is {limits.max_kernel_size} (raise with MNC_MAX_KERNEL_SIZE)"
            )
            break
    parameters = sum(
        q.in_channels * q.out_channels * q.kernel_size**2 + q.out_channels for q in ir.projections
    )
    parameters += sum(2 * p.channels for p in ir.populations if p.name != "input")
    parameters += ir.readout.features * ir.readout.classes + ir.readout.classes
    if parameters > limits.max_parameters:
        problems.append(
            f"the network would have {parameters:,} parameters; the limit is "
            f"{limits.max_parameters:,} (raise with --max-parameters or "
            "MNC_MAX_PARAMETERS)"
        )
    activation_mb = sum(p.channels * p.height * p.width for p in ir.populations) * 4 / 2**20
    if activation_mb > limits.max_activation_mb:
        problems.append(
            f"activations would take {activation_mb:,.1f} MB per image; the limit "
            f"is {limits.max_activation_mb:,.1f} MB (raise with "
            "--max-activation-mb or MNC_MAX_ACTIVATION_MB)"
        )
    if problems:
        raise SizeLimitError(f"network {ir.name!r} is too large: " + "; ".join(problems))
