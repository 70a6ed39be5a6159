"""Pass: kernel size and padding of every projection."""

from __future__ import annotations

import math

from mnc.errors import PassError, PassProblem
from mnc.ir.bounds import LARGEST_KERNEL
from mnc.ir.model import Derivation, DraftIR, FixedProfile, PopulationDraft, ProjectionDraft
from mnc.passes.base import Pass, PassResult

# Beyond LARGEST_KERNEL a kernel is not a connection profile but a unit mistake (mm for um,
# say); refusing here also keeps later passes, which loop over the kernel, bounded.


def kernel_size(sigma_px: float, edge_z: float) -> int:
    return 2 * math.floor(edge_z * sigma_px) + 1


def padding_lrtb(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """Total padding kernel - stride, split evenly, the odd pixel on the right and bottom,
    so that the output lands exactly on the target grid (source_size / stride)."""
    total = kernel - stride
    before = total // 2
    after = total - before
    return before, after, before, after


class SizeKernels(Pass):
    """kernel_size = 2 * floor(edge_z * sigma_px) + 1; padding = kernel_size - stride, split
    evenly with the extra pixel on the right/bottom."""

    name = "size-kernels"
    requires = frozenset({"projection.sigma_px", "projection.stride"})
    provides = frozenset({"projection.kernel_size", "projection.padding_lrtb"})

    def run(self, ir: DraftIR) -> PassResult:
        by_name = {population.name: population for population in ir.populations}
        projections = []
        problems: list[PassProblem] = []
        for projection in ir.projections:
            assert projection.sigma_px is not None and projection.stride is not None
            if ir.edge_z * projection.sigma_px > LARGEST_KERNEL // 2:
                problems.append(
                    PassProblem(
                        _width_field(projection, by_name[projection.source]),
                        (
                            f"projection {projection.name}: sigma_px "
                            f"{projection.sigma_px:.4g} gives a kernel wider than "
                            f"{LARGEST_KERNEL} px; check the width and surface area units"
                        ),
                    )
                )
                continue
            kernel = kernel_size(projection.sigma_px, ir.edge_z)
            padding = padding_lrtb(kernel, projection.stride)
            derivations = {
                **projection.derivations,
                "kernel_size": Derivation(
                    formula="2 * floor(edge_z * sigma_px) + 1",
                    inputs={"edge_z": ir.edge_z, "sigma_px": projection.sigma_px},
                    value=kernel,
                    sources=["kernel"],
                ),
                "padding_lrtb": Derivation(
                    formula="total = kernel_size - stride; left = top = total // 2; "
                    "right = bottom = total - total // 2",
                    inputs={"kernel_size": kernel, "stride": projection.stride},
                    value=list(padding),
                ),
            }
            projections.append(
                projection.model_copy(
                    update={
                        "kernel_size": kernel,
                        "padding_lrtb": padding,
                        "derivations": derivations,
                    }
                )
            )
        if problems:
            raise PassError(problems)
        return PassResult(
            ir.model_copy(update={"projections": projections}), projections != ir.projections
        )


def _width_field(projection: ProjectionDraft, source: PopulationDraft) -> tuple[str | int, ...]:
    """The spec field most likely at fault: the source's surface area, else the width."""
    if isinstance(projection.profile, FixedProfile):
        return ("fixed_projections", "projections", projection.name)
    if source.layer is not None:
        return ("surface_area_mm2", "values", source.area, source.layer)
    return ("interareal", "projections", projection.name)
