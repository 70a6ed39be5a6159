"""Pass: stride and channel counts of every projection from its endpoints' grids."""

from __future__ import annotations

from mnc.errors import PassError, PassProblem
from mnc.ir.model import Derivation, DraftIR
from mnc.passes.base import Pass, PassResult


class MatchGrids(Pass):
    """stride = source size / target size, a whole number >= 1 equal along both axes;
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
            vertical = source.height / target.height
            horizontal = source.width / target.width
            if (
                vertical != horizontal
                or vertical < 1
                or vertical != int(vertical)
                or source.height % target.height
            ):
                problems.append(
                    PassProblem(
                        ("areas", "regions", target.area, "pixels_per_degree"),
                        f"projection {projection.name}: source grid {source.height}x{source.width} "
                        f"does not divide evenly onto target grid {target.height}x{target.width} "
                        "(the target's resolution must be the source's divided by a whole number)",
                    )
                )
                continue
            stride = int(vertical)
            derivation = Derivation(
                formula="source_height / target_height",
                inputs={"source_height": source.height, "target_height": target.height},
                value=stride,
                sources=["areas"],
            )
            projections.append(
                projection.model_copy(
                    update={
                        "stride": stride,
                        "in_channels": source.channels,
                        "out_channels": target.channels,
                        "derivations": {**projection.derivations, "stride": derivation},
                    }
                )
            )
        if problems:
            raise PassError(problems)
        return PassResult(
            ir.model_copy(update={"projections": projections}), projections != ir.projections
        )
