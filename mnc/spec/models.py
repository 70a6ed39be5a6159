"""Pydantic models of a spec file.

Every measured block carries its ``source``. Names carry their units (``sigma_mm``,
``surface_area_mm2``). The models check each value on its own; checks that relate several
blocks (unknown populations, cycles, grids) live in ``mnc.spec.semantics``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mnc.ir.bounds import (
    Classes,
    Delay,
    EdgeZ,
    InputChannels,
    InputSide,
    PixelsPerDegree,
    PoolSize,
    Seed,
    StepIndex,
    Steps,
)
from mnc.mask_modes import MaskMode
from mnc.text import PRINTABLE_TEXT

# Names are printable identifiers: letters, digits and "/", "_", "-" (e.g. "VISp", "2/3").
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_/\-]{0,63}$")]
ProjectionKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_/\-]{0,63}->[A-Za-z0-9][A-Za-z0-9_/\-]{0,63}$"
    ),
]
Source = Annotated[
    str, StringConstraints(min_length=1, max_length=2000, pattern=PRINTABLE_TEXT)
]
NeuronCount = Annotated[int, Field(ge=1, le=10**10)]
PositiveFloat = Annotated[float, Field(gt=0, le=1e6)]
Probability = Annotated[float, Field(ge=0, le=1)]


class SpecModel(BaseModel):
    """Base of every spec block: unknown fields are errors, values are immutable and finite.

    Strict: a number is a number (``true`` or ``"10"`` where one is expected is refused, not
    read as 1 or 10); a whole number may stand where a float is expected."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
        strict=True,
    )


class InputSpec(SpecModel):
    channels: InputChannels
    """Channels of the input image (3 for RGB)."""
    height_px: InputSide
    """Input image height in pixels."""
    width_px: InputSide
    """Input image width in pixels."""
    pixels_per_degree: PixelsPerDegree = 1.0
    """Resolution of the input in pixels per degree of visual angle."""
    source: Source
    """Where the input format comes from."""


class Region(SpecModel):
    hierarchy_level: Annotated[int, Field(ge=0, le=100)]
    """Level in the visual hierarchy (LGNd 0, VISp 1, ...)."""
    pixels_per_degree: PixelsPerDegree
    """Grid resolution of this area's populations; grid side = input side * ratio to the input."""
    laminar: bool = True
    """True for a cortical area with one population per layer; False for a single population."""
    hierarchy_score: Annotated[float, Field(ge=-100, le=100)] | None = None
    """Measured hierarchy score of the area (higher = higher in the hierarchy, e.g. Harris et
    al. 2019); informative, cited by ``areas.hierarchy_score_source``."""


class AreasSpec(SpecModel):
    source: Source
    """Where the hierarchy and the resolutions come from."""
    regions: dict[Name, Region]
    """Areas of the model by name. Set an area to null in a variant to remove it and every
    projection from or to it."""
    hierarchy_score_source: Source | None = None
    """Where the regions' ``hierarchy_score`` values come from (needed when one is set)."""



class LayersSpec(SpecModel):
    names: Annotated[list[Name], Field(min_length=1)]
    """Layers modelled in every laminar area, e.g. ["4", "2/3", "5"]."""
    source: Source


class NeuronsSpec(SpecModel):
    source: Source
    counts: dict[Name, NeuronCount | dict[Name, NeuronCount]]
    """Excitatory neurons: area -> count for non-laminar areas, area -> layer -> count otherwise."""


class SurfaceAreaSpec(SpecModel):
    source: Source
    values: dict[Name, dict[Name, PositiveFloat]]
    """Cortical surface area in mm^2: area -> layer -> value."""
    notes: dict[Name, Source] = Field(default_factory=dict)
    """Per-population provenance (population name -> how the value was obtained)."""



class ProbabilityTable(SpecModel):
    offset_um: PositiveFloat
    """Lateral offset at which the probabilities were measured."""
    source: Source
    table: dict[Name, dict[Name, Probability]]
    """Connection probability at ``offset_um``: table[source layer][target layer]."""


class WidthTable(SpecModel):
    source: Source
    table: dict[Name, dict[Name, Annotated[float, Field(ge=0, le=1e5)]]]
    """Gaussian connection width in micrometres: table[source layer][target layer]."""


class MouseScaling(SpecModel):
    reference_pair: ProjectionKey
    """Layer pair ("4->4") whose width is known in mouse; the table is scaled to match it."""
    width_um: PositiveFloat
    """Mouse width of the reference pair in micrometres."""
    source: Source


class InterlaminarProjection(SpecModel):
    """An interlaminar projection with options: a delay, or only some areas."""

    projection: ProjectionKey
    """Layers "SOURCE->TARGET", e.g. "2/3->2/3" (lateral) or "5->2/3"."""
    delay: Delay = 0
    """Whole time steps between the source's activity and its effect on the target; a
    lateral projection (a layer onto itself) and one that closes a cycle need delay >= 1."""
    areas: Annotated[list[Name], Field(min_length=1)] | None = None
    """Laminar areas that have this projection; null (the default): every laminar area."""
    source: Source | None = None
    """Where this entry (its delay, its areas) comes from, or ASSUMED and why."""


class InterlaminarSpec(SpecModel):
    projections: list[ProjectionKey | InterlaminarProjection]
    """Projections between layers inside every laminar area, e.g. ["4->2/3", "2/3->5"]; an
    entry may instead be a mapping with options, e.g.
    {projection: "2/3->2/3", delay: 1, areas: [VISp]}."""
    projections_source: Source
    connection_probability: ProbabilityTable
    width_um: WidthTable
    mouse_scaling: MouseScaling

    def entries(self) -> list[InterlaminarProjection]:
        """Every entry of ``projections`` with its options (a bare key has the defaults)."""
        return [
            item if isinstance(item, InterlaminarProjection)
            else InterlaminarProjection(projection=item)
            for item in self.projections
        ]


class InterarealProjection(SpecModel):
    strength: Annotated[float, Field(gt=0, le=1e6)]
    """Relative share of the target's extrinsic in-degree; normalised over the target's
    sources present in the model."""
    sigma_mm: Annotated[float, Field(gt=0, le=100)]
    """Width of the projection's Gaussian profile on the cortical surface, in mm."""
    delay: Delay = 0
    """Whole time steps between the source's activity and its effect on the target; feedback
    (a source at a higher hierarchy level than the target) and a projection that closes a
    cycle need delay >= 1."""
    source: Source | None = None
    """Where this projection's figures come from when the block's ``source`` does not cover
    them (e.g. ASSUMED values for a projection nobody measured)."""


class InterarealSpec(SpecModel):
    source: Source
    extrinsic_in_degree: Annotated[float, Field(gt=0, le=1e7)]
    """Neurons in other areas that synapse onto one neuron of a target population."""
    extrinsic_in_degree_source: Source
    in_degree_per_target: dict[Name, Annotated[float, Field(gt=0, le=1e7)]] = Field(
        default_factory=dict
    )
    """Optional per-target override of ``extrinsic_in_degree`` (population name -> value)."""
    feedback_share: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Share of a target's inputs that its delayed interareal (feedback) projections supply:
    they share ``feedback_share * extrinsic_in_degree`` inputs among themselves by strength
    (its delay-0 sources keep the whole in-degree), and their initial weights give them this
    share of the target's drive variance (see ``mnc.lowering.fresh_weights``). Null: delayed
    and delay-0 sources share one in-degree by strength and start like any projection."""
    feedback_share_source: Source | None = None
    """Where ``feedback_share`` comes from, or ASSUMED and why (needed when it is set)."""
    projections: dict[ProjectionKey, InterarealProjection]
    """Projections between areas: "SOURCE->TARGET" population names."""



class FixedProjection(SpecModel):
    sigma_px: Annotated[float, Field(gt=0, le=1e4)]
    """Width of the Gaussian profile in pixels of the source grid."""
    peak_probability: Annotated[float, Field(gt=0, le=1e6)]
    """Probability at the kernel centre (values above 1 act as 1)."""
    delay: Delay = 0
    """Whole time steps between the source's activity and its effect on the target."""


class FixedProjectionsSpec(SpecModel):
    source: Source
    projections: dict[ProjectionKey, FixedProjection]
    """Projections given directly in pixels (the thalamic pathway)."""


class KernelSpec(SpecModel):
    edge_z: EdgeZ
    """Kernel half-width in standard deviations: kernel_size = 2 * floor(edge_z * sigma_px) + 1."""
    source: Source



class ReadoutMean(SpecModel):
    # YAML gives a list (lax tuple); the steps inside stay strict whole numbers.
    mean: Annotated[tuple[Annotated[StepIndex, Field(strict=True)],
                          Annotated[StepIndex, Field(strict=True)]], Field(strict=False)]
    """First and last step (counted from 0, both included) whose features are averaged."""


class DynamicsSpec(SpecModel):
    """How the network runs in time. Without this block: one step, the feed-forward network.

    At step t (counted from 0) every population sums its delay-0 inputs at step t and its
    delay-d inputs at step t - d (nothing before step 0), then its BatchNorm and ReLU; weights
    are shared by all steps. Each value that is set needs its ``*_source``.
    """

    steps: Steps = 1
    """Time steps the network runs."""
    steps_source: Source | None = None
    input: Literal["still", "clip"] = "still"
    """still: one image (N, C, H, W) shown at every step; clip: frames (N, T, C, H, W) with
    T equal to steps, frame t shown at step t."""
    input_source: Source | None = None
    readout: Literal["last"] | ReadoutMean = "last"
    """last: the classifier reads the last step; {mean: [first, last]}: the readout
    populations' pooled features averaged over those steps."""
    readout_source: Source | None = None


class MaskSpec(SpecModel):
    mode: MaskMode = "gaussian"
    """gaussian: fixed random binary mask drawn from the profile (published model);
    none: dense kernels; expected: the deterministic profile itself scales each tap;
    learnable: the profile's peak and width train with the weights."""
    seed: Seed = 0
    """Seed of the random masks."""


class ReadoutSpec(SpecModel):
    populations: Annotated[list[Name], Field(min_length=1)]
    """Populations pooled into the classifier."""
    pool_size: PoolSize = 4
    """Each readout population is average-pooled to pool_size x pool_size."""
    classes: Classes
    """Number of output classes."""
    source: Source


class Spec(SpecModel):
    """A MouseNet spec: measurements and modelling constants that define one network."""

    version: Literal[1]
    """Spec format version."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=PRINTABLE_TEXT)]
    description: Annotated[str, StringConstraints(max_length=10_000, pattern=PRINTABLE_TEXT)] = ""
    extends: str | list[str] | None = None
    """Spec file(s) this one is based on, relative to this file; merged before validation."""
    input: InputSpec
    areas: AreasSpec
    layers: LayersSpec
    neurons: NeuronsSpec
    surface_area_mm2: SurfaceAreaSpec
    interlaminar: InterlaminarSpec
    interareal: InterarealSpec
    fixed_projections: FixedProjectionsSpec
    kernel: KernelSpec
    mask: MaskSpec = MaskSpec()
    readout: ReadoutSpec
    dynamics: DynamicsSpec = DynamicsSpec()

    def __repr__(self) -> str:
        """A few lines about the network the spec describes; ``model_dump()`` has every field."""
        regions = self.areas.regions
        laminar = sum(region.laminar for region in regions.values())
        every_area = all(entry.areas is None for entry in self.interlaminar.entries())
        laminar_scope = "per laminar area" if every_area else "entries"
        return (
            f"Spec {self.name!r} (version {self.version})\n"
            f"  input {self.input.channels}x{self.input.height_px}x{self.input.width_px}; "
            f"{len(regions)} areas ({', '.join(regions)}), {laminar} with layers "
            f"{', '.join(self.layers.names)}\n"
            f"  projections: {len(self.interareal.projections)} interareal, "
            f"{len(self.interlaminar.projections)} interlaminar {laminar_scope}, "
            f"{len(self.fixed_projections.projections)} fixed; mask {self.mask.mode} "
            f"(seed {self.mask.seed})\n"
            f"  readout: {len(self.readout.populations)} populations -> "
            f"{self.readout.classes} classes{self._dynamics_text()}"
        )

    def _dynamics_text(self) -> str:
        dynamics = self.dynamics
        delayed = sum(1 for entry in self.interlaminar.entries() if entry.delay) + sum(
            1 for block in (self.interareal.projections, self.fixed_projections.projections)
            for projection in block.values() if projection.delay)
        if dynamics.steps == 1 and not delayed:
            return ""
        readout = (dynamics.readout if isinstance(dynamics.readout, str)
                   else f"mean of steps {dynamics.readout.mean[0]}-{dynamics.readout.mean[1]}")
        return (f"\n  dynamics: {dynamics.steps} steps, {dynamics.input} input, readout "
                f"{readout}; {delayed} delayed projection entries")

    __str__ = __repr__
