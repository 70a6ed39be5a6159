"""Pass: stride and channel counts of every projection from its endpoints' grids."""

from __future__ import annotations

from mnc.errors import PassError, PassProblem
from mnc.ir.model import Derivation, DraftIR, PopulationDraft, ProjectionDraft
from mnc.passes.base import Pass, PassResult


class MatchGrids(Pass):
    """Onto an equal or coarser grid: stride = source size / target size, a whole number
    >= 1 equal along both axes. Onto a finer grid (feedback from a higher area):
    upsample = target size / source size, a whole number equal along both axes, and stride 1;
    the source is repeated that many times per axis before the convolution.
    in_channels = source channels, out_channels = target channels."""

    name = "match-grids"
    requires = frozenset({"population.height", "population.width", "population.channels"})
    provides = frozenset({"projection.stride", "projection.in_channels", "projection.out_channels"})

    def run(self, ir: DraftIR) -> PassResult:
        by_name = {population.name: population for population in ir.populations}
        problems: list[PassProblem] = []
        projections = []
        for projection in ir.projections:
            source, target = by_name[projection.source], by_name[projection.target]
            assert source.height and source.width and target.height and target.width
            finer = target.height > source.height or target.width > source.width
            matched = (_upsample(projection, source, target) if finer
                       else _stride(projection, source, target))
            if isinstance(matched, PassProblem):
                problems.append(matched)
                continue
            stride, upsample, derivation = matched
            update = {
                "stride": stride,
                "in_channels": source.channels,
                "out_channels": target.channels,
                "derivations": {**projection.derivations, derivation[0]: derivation[1]},
            }
            if finer:
                update["upsample"] = upsample
            projections.append(projection.model_copy(update=update))
        if problems:
            raise PassError(problems)
        return PassResult(
            ir.model_copy(update={"projections": projections}), projections != ir.projections
        )


Matched = tuple[int, int, tuple[str, Derivation]]


def _stride(projection: ProjectionDraft, source: PopulationDraft,
            target: PopulationDraft) -> Matched | PassProblem:
    assert source.height and source.width and target.height and target.width
    vertical = source.height / target.height
    horizontal = source.width / target.width
    if (
        vertical != horizontal
        or vertical < 1
        or vertical != int(vertical)
        or source.height % target.height
    ):
        return PassProblem(
            ("areas", "regions", target.area, "pixels_per_degree"),
            f"projection {projection.name}: source grid {source.height}x{source.width} "
            f"does not divide evenly onto target grid {target.height}x{target.width} "
            "(the target's resolution must be the source's divided by a whole number)",
        )
    stride = int(vertical)
    derivation = Derivation(
        formula="source_height / target_height",
        inputs={"source_height": source.height, "target_height": target.height},
        value=stride,
        sources=["areas"],
    )
    return stride, 1, ("stride", derivation)


def _upsample(projection: ProjectionDraft, source: PopulationDraft,
              target: PopulationDraft) -> Matched | PassProblem:
    assert source.height and source.width and target.height and target.width
    if (
        target.height % source.height
        or target.width % source.width
        or target.height // source.height != target.width // source.width
    ):
        return PassProblem(
            ("areas", "regions", source.area, "pixels_per_degree"),
            f"projection {projection.name}: target grid {target.height}x{target.width} is "
            f"not a whole multiple of source grid {source.height}x{source.width} (a "
            "projection onto a finer grid repeats each source pixel a whole number of "
            "times, the same along both axes: the target's resolution must be the source's "
            "times a whole number)",
        )
    upsample = target.height // source.height
    derivation = Derivation(
        formula="target_height / source_height (stride 1)",
        inputs={"source_height": source.height, "target_height": target.height},
        value=upsample,
        sources=["areas"],
    )
    return 1, upsample, ("upsample", derivation)
