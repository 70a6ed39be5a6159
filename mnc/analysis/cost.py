"""Parameters, multiply-accumulates and activation memory of a network, from its IR.

MACs of a projection are counted per output pixel of its target: ``target grid x in x out x
kernel taps``. Upsampling repeats the source before the convolution, which changes the grid
the kernel slides over but not the number of outputs, so it does not enter the count.

A recurrent network (``IR.dynamics``) runs every projection once per step, except that a
projection with delay ``d`` adds nothing at steps ``t < d`` (its source is zero before step 0)
and is not counted there: *per step* figures are one step with every projection computing,
*per image* figures sum over the steps of a run (``steps - delay`` runs of each projection,
counted off the time schedule: ``mnc.analysis.recurrence.projection_runs``).
Activations are kept for every step (per-step features, training through time), so the
activation bytes of an image are ``steps`` times those of a step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mnc.analysis.recurrence import projection_runs, recurrent_counts
from mnc.ir.model import IR, Projection
from mnc.masks import tap_probabilities

BYTES_PER_VALUE = 4  # float32


@dataclass(frozen=True)
class ProjectionCost:
    name: str
    parameters: int
    dense_macs: int
    masked_macs: float
    """Expected MACs of the kept taps (exactly the dense count when masks are off), one step."""
    kept_fraction: float
    runs: int = 1
    """Steps of a run at which the projection computes (``steps - delay``)."""
    delay: int = 0


@dataclass(frozen=True)
class PopulationCost:
    name: str
    values: int
    activation_bytes: int
    norm_parameters: int


@dataclass(frozen=True)
class NetworkCost:
    projections: list[ProjectionCost]
    populations: list[PopulationCost]
    classifier_parameters: int
    steps: int = 1
    recurrent_projections: int = 0
    """Projections with a delay (feedback, lateral, delayed forward)."""

    @property
    def parameters(self) -> int:
        return (
            sum(cost.parameters for cost in self.projections)
            + sum(cost.norm_parameters for cost in self.populations)
            + self.classifier_parameters
        )

    @property
    def dense_macs(self) -> int:
        """One step with every projection computing (the whole image when feed-forward)."""
        return sum(cost.dense_macs for cost in self.projections)

    @property
    def masked_macs(self) -> float:
        """One step with every projection computing (the whole image when feed-forward)."""
        return sum(cost.masked_macs for cost in self.projections)

    @property
    def dense_macs_total(self) -> int:
        """One image: every step of the run, delayed projections from step ``delay`` on."""
        return sum(cost.dense_macs * cost.runs for cost in self.projections)

    @property
    def masked_macs_total(self) -> float:
        return sum(cost.masked_macs * cost.runs for cost in self.projections)

    @property
    def activation_bytes(self) -> int:
        """One step: every population's activity."""
        return sum(cost.activation_bytes for cost in self.populations)

    @property
    def activation_bytes_total(self) -> int:
        """One image: the activity of every step."""
        return self.steps * self.activation_bytes

    def as_dict(self) -> dict[str, object]:
        return {
            "parameters": self.parameters,
            "steps": self.steps,
            "recurrent_projections": self.recurrent_projections,
            "dense_macs_per_step": self.dense_macs,
            "masked_macs_per_step": round(self.masked_macs),
            "dense_macs_per_image": self.dense_macs_total,
            "masked_macs_per_image": round(self.masked_macs_total),
            "activation_bytes_per_step": self.activation_bytes,
            "activation_bytes_per_image": self.activation_bytes_total,
            "classifier_parameters": self.classifier_parameters,
            "projections": [asdict(cost) for cost in self.projections],
            "populations": [asdict(cost) for cost in self.populations],
        }


def projection_cost(ir: IR, projection: Projection, runs: int | None = None) -> ProjectionCost:
    """One projection's cost; ``runs``: how often it computes in a run (counted off the time
    schedule when not given)."""
    if runs is None:
        runs = projection_runs(ir)[projection.name]
    target = ir.population(projection.target)
    taps = projection.kernel_size**2
    pairs = projection.in_channels * projection.out_channels
    outputs = target.height * target.width
    dense = outputs * pairs * taps
    kept = 1.0 if ir.mask.mode == "none" else float(tap_probabilities(projection).sum()) / taps
    return ProjectionCost(
        projection.name, pairs * taps + projection.out_channels, dense, dense * kept, kept,
        runs, projection.delay,
    )


def network_cost(ir: IR) -> NetworkCost:
    populations = []
    for population in ir.populations:
        values = population.channels * population.height * population.width
        norm = 0 if population.name == "input" else 2 * population.channels
        populations.append(PopulationCost(population.name, values, values * BYTES_PER_VALUE, norm))
    classifier = ir.readout.features * ir.readout.classes + ir.readout.classes
    runs = projection_runs(ir)
    return NetworkCost(
        [projection_cost(ir, projection, runs[projection.name])
         for projection in ir.projections], populations,
        classifier, ir.dynamics.steps, sum(recurrent_counts(ir).values()),
    )


@dataclass(frozen=True)
class PopulationTotal:
    """What computing one population costs: its incoming projections plus its BatchNorm."""

    name: str
    parameters: int
    dense_macs: int
    masked_macs: float


def population_totals(ir: IR, cost: NetworkCost) -> list[PopulationTotal]:
    """Per population, in IR order: parameters and MACs (one step) of the projections into it
    and its norm.

    Summed over populations this gives every parameter except the classifier's.
    """
    incoming: dict[str, list[ProjectionCost]] = {p.name: [] for p in ir.populations}
    for projection, projection_cost_ in zip(ir.projections, cost.projections, strict=True):
        incoming[projection.target].append(projection_cost_)
    return [
        PopulationTotal(
            population.name,
            population.norm_parameters + sum(item.parameters for item in incoming[population.name]),
            sum(item.dense_macs for item in incoming[population.name]),
            sum(item.masked_macs for item in incoming[population.name]),
        )
        for population in cost.populations
    ]
