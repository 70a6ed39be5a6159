"""Pass: number of features the readout's linear layer receives."""

from __future__ import annotations

from mnc.ir.model import DraftIR
from mnc.passes.base import Pass, PassResult


class SizeReadout(Pass):
    """features = sum over readout populations of channels * pool_size^2."""

    name = "size-readout"
    requires = frozenset({"population.channels", "readout.populations"})
    provides = frozenset({"readout.features"})

    def run(self, ir: DraftIR) -> PassResult:
        channels = {population.name: population.channels for population in ir.populations}
        per_population = [channels[name] or 0 for name in ir.readout.populations]
        features = sum(per_population) * ir.readout.pool_size**2
        readout = ir.readout.model_copy(update={"features": features})
        return PassResult(ir.model_copy(update={"readout": readout}), readout != ir.readout)
