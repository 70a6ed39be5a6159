"""Pass: channels of every population from its neuron count and grid."""

from __future__ import annotations

from mnc.errors import PassError, PassProblem
from mnc.ir.model import Derivation, DraftIR
from mnc.passes.base import Pass, PassResult


class CountChannels(Pass):
    """channels = floor(neurons / (height * width)); a population with zero channels is an error."""

    name = "count-channels"
    requires = frozenset({"population.height", "population.width"})
    provides = frozenset({"population.channels"})

    def run(self, ir: DraftIR) -> PassResult:
        problems: list[PassProblem] = []
        populations = []
        for population in ir.populations:
            if population.neurons is None:  # the input: channels come from the spec
                populations.append(population)
                continue
            assert population.height is not None and population.width is not None
            grid = population.height * population.width
            channels = population.neurons // grid
            if channels < 1:
                path: tuple[str | int, ...] = ("neurons", "counts", population.area)
                if population.layer is not None:
                    path += (population.layer,)
                problems.append(
                    PassProblem(
                        path,
                        (
                            f"population {population.name} would have 0 channels: "
                            f"floor({population.neurons} neurons / "
                            f"({population.height} x {population.width} grid)) = 0; "
                            f"it needs at least {grid} neurons at this resolution"
                        ),
                    )
                )
                continue
            derivation = Derivation(
                formula="floor(neurons / (height * width))",
                inputs={
                    "neurons": population.neurons,
                    "height": population.height,
                    "width": population.width,
                },
                value=channels,
                sources=["neurons"],
            )
            populations.append(
                population.model_copy(
                    update={
                        "channels": channels,
                        "derivations": {**population.derivations, "channels": derivation},
                    }
                )
            )
        if problems:
            raise PassError(problems)
        return PassResult(
            ir.model_copy(update={"populations": populations}), populations != ir.populations
        )
