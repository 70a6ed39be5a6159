"""Pass: grid size of every population from its area's resolution."""

from __future__ import annotations

from mnc.errors import PassError, PassProblem
from mnc.ir.model import Derivation, DraftIR
from mnc.passes.base import Pass, PassResult


class SizeGrids(Pass):
    """height = input_height * pixels_per_degree / input_pixels_per_degree (and width alike).

    The result must be a whole number of pixels; anything else is reported with the numbers.
    """

    name = "size-grids"
    provides = frozenset({"population.height", "population.width"})

    def run(self, ir: DraftIR) -> PassResult:
        problems: list[PassProblem] = []
        reported_areas: set[str] = set()
        populations = []
        for population in ir.populations:
            ratio = population.pixels_per_degree / ir.input.pixels_per_degree
            exact_height = ir.input.height * ratio
            exact_width = ir.input.width * ratio
            height, width = round(exact_height), round(exact_width)
            if (
                min(height, width) < 1
                or abs(exact_height - height) > 1e-9
                or abs(exact_width - width) > 1e-9
            ):
                if population.area in reported_areas:
                    continue
                reported_areas.add(population.area)
                problems.append(
                    PassProblem(
                        ("areas", "regions", population.area, "pixels_per_degree"),
                        f"population {population.name}: grid {exact_height:g} x {exact_width:g} px "
                        f"(input {ir.input.height} x {ir.input.width} px x "
                        f"{population.pixels_per_degree:g} / {ir.input.pixels_per_degree:g}) "
                        "is not a whole number of pixels >= 1",
                    )
                )
                continue
            derivation = Derivation(
                formula="input_size * pixels_per_degree / input_pixels_per_degree",
                inputs={
                    "input_height": ir.input.height,
                    "input_width": ir.input.width,
                    "pixels_per_degree": population.pixels_per_degree,
                    "input_pixels_per_degree": ir.input.pixels_per_degree,
                },
                value=[height, width],
                sources=["areas", "input"],
            )
            populations.append(
                population.model_copy(
                    update={
                        "height": height,
                        "width": width,
                        "derivations": {**population.derivations, "height_width": derivation},
                    }
                )
            )
        if problems:
            raise PassError(problems)
        changed = populations != ir.populations
        return PassResult(ir.model_copy(update={"populations": populations}), changed)
