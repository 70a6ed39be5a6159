"""Pass: probability of a kept tap at the kernel centre (the mask's peak)."""

from __future__ import annotations

import math

from mnc.ir.model import (
    Derivation,
    DraftIR,
    FixedProfile,
    InterarealProfile,
    InterlaminarProfile,
    ProjectionDraft,
)
from mnc.passes.base import Pass, PassResult
from mnc.passes.scale_widths import mouse_width_um


def gaussian_kernel_sum(kernel: int, sigma_px: float) -> float:
    """G = sum over the integer kernel grid of exp(-(x^2 + y^2) / (2 sigma_px^2))."""
    half = kernel // 2
    line = sum(
        math.exp(-(offset * offset) / (2 * sigma_px * sigma_px))
        for offset in range(-half, half + 1)
    )
    return line * line  # the 2-D Gaussian separates into a product of two 1-D sums


class SetPeakProbabilities(Pass):
    """peak_probability per kind of projection:

    - interlaminar: p(offset) / exp(-offset^2 / (2 width_um^2)), the measured probability at
      the lateral offset extrapolated to zero offset;
    - interareal: inputs / (source_channels * G), with inputs = in_degree * strength /
      (sum of strengths of the target's sources in the model) and G the Gaussian summed over
      the kernel grid, so that the expected number of inputs matches the measured share; with
      a feedback share, a delayed source gets in_degree * feedback_share * strength / (sum of
      the strengths of the target's delayed sources);
    - fixed: as given.
    A peak above 1 acts as 1 when masks are drawn; the IR keeps the derived value.
    """

    name = "set-peak-probabilities"
    requires = frozenset(
        {
            "projection.kernel_size",
            "projection.sigma_px",
            "projection.in_channels",
            "projection.profile",
        }
    )
    provides = frozenset({"projection.peak_probability"})

    def run(self, ir: DraftIR) -> PassResult:
        projections = [self._peak(projection) for projection in ir.projections]
        return PassResult(
            ir.model_copy(update={"projections": projections}), projections != ir.projections
        )

    def _peak(self, projection: ProjectionDraft) -> ProjectionDraft:
        profile = projection.profile
        if isinstance(profile, FixedProfile):
            derivation = Derivation(
                formula="given",
                inputs={"peak_probability": profile.peak_probability},
                value=profile.peak_probability,
                sources=["fixed_projections"],
            )
        elif isinstance(profile, InterlaminarProfile):
            width = mouse_width_um(profile)
            falloff = math.exp(-(profile.offset_um**2) / (2 * width**2))
            derivation = Derivation(
                formula="probability_at_offset / exp(-offset_um^2 / (2 width_um^2))",
                inputs={
                    "probability_at_offset": profile.probability_at_offset,
                    "offset_um": profile.offset_um,
                    "width_um": width,
                },
                value=profile.probability_at_offset / falloff,
                sources=[
                    "interlaminar.connection_probability",
                    "interlaminar.width_um",
                    "interlaminar.mouse_scaling",
                ],
            )
        else:
            assert isinstance(profile, InterarealProfile)
            assert projection.kernel_size and projection.sigma_px and projection.in_channels
            inputs = profile.inputs
            grid_sum = gaussian_kernel_sum(projection.kernel_size, projection.sigma_px)
            shared = profile.feedback_share is not None
            derivation = Derivation(
                formula=("in_degree * feedback_share" if shared else "in_degree")
                + " * strength / strength_total / (in_channels * G); "
                "G = sum over kernel grid of exp(-(x^2 + y^2) / (2 sigma_px^2))",
                inputs={
                    "in_degree": profile.in_degree,
                    **({"feedback_share": profile.feedback_share} if shared else {}),
                    "strength": profile.strength,
                    "strength_total": profile.strength_total,
                    "inputs_from_source": inputs,
                    "in_channels": projection.in_channels,
                    "kernel_size": projection.kernel_size,
                    "sigma_px": projection.sigma_px,
                    "G": grid_sum,
                },
                value=inputs / (projection.in_channels * grid_sum),
                sources=[
                    "interareal",
                    "interareal.extrinsic_in_degree",
                    *(["interareal.feedback_share"] if shared else []),
                ],
            )
        assert isinstance(derivation.value, float | int)
        return projection.model_copy(
            update={
                "peak_probability": float(derivation.value),
                "derivations": {**projection.derivations, "peak_probability": derivation},
            }
        )
