"""IR models in two stages.

``DraftIR`` comes from the spec: measured inputs are set, derived numbers are ``None``.
Passes fill the derived numbers; ``DraftIR.resolve()`` turns the result into ``IR``, in which
every derived field is required. Backends accept only ``IR``, so a missing derivation is a
validation error at the boundary, not a surprise inside a backend.

Field names of populations and projections follow the published architecture file
(name, area, layer, channels, height, width, neurons; source, target, in_channels,
out_channels, kernel_size, stride, padding_lrtb, peak_probability, sigma_px).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cached_property
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from mnc.ir.bounds import (
    Classes,
    Count,
    Delay,
    EdgeZ,
    InputChannels,
    InputSide,
    KernelSize,
    PixelsPerDegree,
    PoolSize,
    PositiveProbability,
    PositiveWidth,
    Seed,
    StepIndex,
    Steps,
    Stride,
    Upsample,
)
from mnc.mask_modes import MaskMode
from mnc.text import PROBABILITY_CAP, html_view, peak_probability_text

IR_VERSION = 1


class IRModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


Number = float | int
DerivationInput = Number | str | list[Number] | None


class Derivation(IRModel):
    """How one derived number was obtained: formula, the numbers that went in, their sources."""

    formula: str
    inputs: dict[str, DerivationInput]
    value: DerivationInput
    sources: list[str] = Field(default_factory=list)
    """Keys of ``IR.provenance.sources`` the inputs come from."""


class InputShape(IRModel):
    channels: InputChannels
    height: InputSide
    width: InputSide
    pixels_per_degree: PixelsPerDegree = 1.0


class Dynamics(IRModel):
    """How the network runs in time. The defaults are the feed-forward network: one step.

    At step ``t`` (0-based) each population sums its delay-0 inputs at step ``t`` and its
    delay-``d`` inputs at step ``t - d`` (zero before step 0), then applies its BatchNorm and
    ReLU. Weights and BatchNorm are shared by all steps.
    """

    steps: Steps = 1
    """Time steps the network is unrolled."""
    input: Literal["still", "clip"] = "still"
    """``still``: one image ``(N, C, H, W)`` shown at every step; ``clip``: ``(N, T, C, H, W)``
    with ``T == steps``, frame ``t`` shown at step ``t``."""
    readout_steps: tuple[StepIndex, StepIndex] | None = None
    """First and last step (0-based, inclusive) whose pooled features the readout averages;
    None: the last step only."""

    @property
    def readout_range(self) -> range:
        """The steps the readout averages."""
        if self.readout_steps is None:
            return range(self.steps - 1, self.steps)
        first, last = self.readout_steps
        return range(first, last + 1)

    @property
    def is_default(self) -> bool:
        return self == Dynamics()


class MaskConfig(IRModel):
    mode: MaskMode = "gaussian"
    seed: Seed = 0


class Provenance(IRModel):
    spec_name: str
    spec_files: list[str] = Field(default_factory=list)
    """Spec files merged into this IR, base first (paths as given)."""
    sources: dict[str, str] = Field(default_factory=dict)
    """Spec block -> citation of its measurements."""
    notes: list[str] = Field(default_factory=list)
    """What the front end decided while lowering, e.g. projections pruned with a removed area."""


class FixedProfile(IRModel):
    kind: Literal["fixed"] = "fixed"
    sigma_px: float
    peak_probability: float


class InterlaminarProfile(IRModel):
    kind: Literal["interlaminar"] = "interlaminar"
    probability_at_offset: float
    offset_um: float
    cat_width_um: float
    cat_reference_width_um: float
    mouse_reference_width_um: float


class InterarealProfile(IRModel):
    kind: Literal["interareal"] = "interareal"
    strength: float
    strength_total: float
    """Sum of the strengths of every source of the target present in the model."""
    sigma_mm: float
    in_degree: float
    feedback_share: float | None = None
    """Set on a delayed projection when the spec gives ``interareal.feedback_share``: the
    target's delayed sources share ``in_degree * feedback_share`` inputs (``strength_total``
    then sums the delayed sources only)."""

    @property
    def inputs(self) -> float:
        """Expected inputs per target neuron from this source."""
        share = 1.0 if self.feedback_share is None else self.feedback_share
        return self.in_degree * share * self.strength / self.strength_total


Profile = Annotated[
    FixedProfile | InterlaminarProfile | InterarealProfile, Field(discriminator="kind")
]


class PopulationDraft(IRModel):
    name: str
    area: str
    layer: str | None
    hierarchy_level: int
    pixels_per_degree: PixelsPerDegree
    neurons: int | None
    surface_area_mm2: float | None = None
    channels: Count | None = None
    height: Count | None = None
    width: Count | None = None
    derivations: dict[str, Derivation] = Field(default_factory=dict)


class Population(PopulationDraft):
    channels: Count
    height: Count
    width: Count


class ProjectionDraft(IRModel):
    source: str
    target: str
    profile: Profile
    in_channels: Count | None = None
    out_channels: Count | None = None
    kernel_size: KernelSize | None = None
    stride: Stride | None = None
    padding_lrtb: tuple[int, int, int, int] | None = None
    peak_probability: PositiveProbability | None = None
    sigma_px: PositiveWidth | None = None
    delay: Delay = 0
    """Whole time steps between the source's activity and its effect on the target;
    feedback, lateral and every cycle-closing projection have ``delay >= 1``."""
    upsample: Upsample = 1
    """The source map is repeated (nearest neighbour) this many times along each axis before
    the convolution: projections from a coarser grid onto a finer one (feedback)."""
    derivations: dict[str, Derivation] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


class Projection(ProjectionDraft):
    in_channels: Count
    out_channels: Count
    kernel_size: KernelSize
    stride: Stride
    padding_lrtb: tuple[int, int, int, int]
    peak_probability: PositiveProbability
    sigma_px: PositiveWidth


class ReadoutDraft(IRModel):
    populations: list[str]
    pool_size: PoolSize
    classes: Classes
    features: int | None = None


class Readout(ReadoutDraft):
    features: int


class _IRBase(IRModel):
    version: int = IR_VERSION
    name: str
    input: InputShape
    edge_z: EdgeZ
    mask: MaskConfig
    provenance: Provenance
    dynamics: Dynamics = Field(default_factory=Dynamics)

    @property
    def is_recurrent(self) -> bool:
        """More than one step, or a projection with a delay: backends unroll in time."""
        return self.dynamics.steps > 1 or any(
            projection.delay for projection in self.projections)  # type: ignore[attr-defined]

    def _lookup(self, field: str, name: str) -> Any:
        # Name -> item, built on first lookup and kept in __dict__ beside cached properties
        # (outside the fields: not in the JSON, the hash or ==), with the list it indexes so
        # a copy with new items (``model_copy(update=...)``) builds its own.
        items: list[Any] = getattr(self, field)
        key = f"_index_of_{field}"
        built = self.__dict__.get(key)
        if built is None or built[0] is not items:
            built = (items, {item.name: item for item in items})
            self.__dict__[key] = built
        try:
            return built[1][name]
        except KeyError:
            raise KeyError(name) from None

    def model_copy(self, *, update: Any = None, deep: bool = False) -> Any:
        """A copy that computes its own cached values (hash, indexes): ``update`` may have
        changed what they were computed from."""
        copy = super().model_copy(update=update, deep=deep)
        for key in [key for key in copy.__dict__ if key == "content_hash"
                    or key.startswith("_index_of_")]:
            del copy.__dict__[key]
        return copy

    def population_names(self) -> list[str]:
        return [population.name for population in self.populations]  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        """A few lines from the IR's own fields: the full field listing is ``model_dump()``."""
        ir = cast("IR | DraftIR", self)
        return summary_text(ir, _time_details(ir))

    __str__ = __repr__


class DraftIR(_IRBase):
    populations: list[PopulationDraft]
    projections: list[ProjectionDraft]
    readout: ReadoutDraft

    def population(self, name: str) -> PopulationDraft:
        return cast(PopulationDraft, self._lookup("populations", name))

    def projection(self, name: str) -> ProjectionDraft:
        """By name, ``"SOURCE->TARGET"``."""
        return cast(ProjectionDraft, self._lookup("projections", name))

    def resolve(self) -> IR:
        """The resolved IR; raises pydantic.ValidationError if a pass left a field unset."""
        return IR.model_validate(self.model_dump())


class IR(_IRBase):
    populations: list[Population]
    projections: list[Projection]
    readout: Readout

    def population(self, name: str) -> Population:
        return cast(Population, self._lookup("populations", name))

    def projection(self, name: str) -> Projection:
        """By name, ``"SOURCE->TARGET"``."""
        return cast(Projection, self._lookup("projections", name))

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of what determines the network (graph, shapes, mask profiles, seed).

        Floats are rounded to 10 significant digits so the hash is the same on every machine
        even if a math library differs in the last bit. Names and citations are left out: two
        specs that build the same network share a hash.
        """
        return hashlib.sha256(canonical_json(self).encode()).hexdigest()

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]

    def __repr__(self) -> str:
        """The IR's own lines, and where its costs are shown."""
        return super().__repr__() + f"\n  {COST_HINT}"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        """Jupyter's view: the repr's lines and a table of populations (area, layer, channels,
        grid)."""
        return html_view(repr(self).splitlines(), POPULATION_COLUMNS,
                         [population_cells(population) for population in self.populations])


# An IR shows what it holds; costs (parameters, MACs) are computed in mnc.analysis, a layer
# above, so the view with costs is a function there, not a method here.
COST_HINT = "costs: mnc.analysis.display.cost_view(ir)"
POPULATION_COLUMNS = ("population", "area", "layer", "channels", "grid")


def population_cells(population: Population) -> list[object]:
    """A population's row in the Jupyter table, one cell a column of ``POPULATION_COLUMNS``."""
    return [population.name, population.area, population.layer or "-", population.channels,
            f"{population.height}x{population.width}"]


def summary_text(ir: IR | DraftIR, details: Sequence[str] = ()) -> str:
    """What ``repr(ir)`` prints: the headline, input and sizes, ``details`` (one a line), the
    readout. ``mnc.analysis.display`` passes the steps and costs as ``details``."""
    shape = f"{ir.input.channels}x{ir.input.height}x{ir.input.width}"
    sizes = (f"input {shape}, {len(ir.populations)} populations, "
             f"{len(ir.projections)} projections, mask {ir.mask.mode} (seed {ir.mask.seed})")
    readout = (f"readout: {len(ir.readout.populations)} populations -> "
               f"{ir.readout.classes} classes")
    if isinstance(ir, IR):
        headline = f"IR {ir.name!r} (content hash {ir.short_hash})"
        readout += _capped_note(ir)
    else:
        headline = f"DraftIR {ir.name!r} (derived sizes not filled in yet)"
    return "\n  ".join([headline, sizes, *details, readout])


def _time_details(ir: IR | DraftIR) -> list[str]:
    """The steps and the recurrent (delayed) projections of a network that runs in time."""
    if not ir.is_recurrent:
        return []
    steps = ir.dynamics.steps
    delayed = sum(1 for projection in ir.projections if projection.delay)
    return [f"time: {steps} step{'s' if steps != 1 else ''}; {delayed} recurrent "
            f"projection{'s' if delayed != 1 else ''}"]


def _capped_note(ir: IR) -> str:
    """Names the projections whose peak probability is above 1 (the mask caps it there)."""
    capped = [q for q in ir.projections if q.peak_probability > PROBABILITY_CAP]
    if not capped:
        return ""
    highest = max(capped, key=lambda q: q.peak_probability)
    return (f"; peak probability capped at {PROBABILITY_CAP:g} in {len(capped)} "
            f"projection(s), e.g. {highest.name} {peak_probability_text(highest.peak_probability)}")


def _round(value: float) -> float:
    return float(f"{value:.10g}")


def _time_fields(projection: Projection) -> list[int]:
    """Delay and upsampling enter the hash only when set, so feed-forward IRs keep theirs."""
    if projection.delay == 0 and projection.upsample == 1:
        return []
    return [projection.delay, projection.upsample]


def canonical_json(ir: IR) -> str:
    content: dict[str, Any] = {
        "ir_version": ir.version,
        "input": [ir.input.channels, ir.input.height, ir.input.width],
        "mask": [ir.mask.mode, ir.mask.seed],
        "populations": [[p.name, p.channels, p.height, p.width] for p in ir.populations],
        "projections": [
            [
                q.source,
                q.target,
                q.in_channels,
                q.out_channels,
                q.kernel_size,
                q.stride,
                list(q.padding_lrtb),
                _round(q.peak_probability),
                _round(q.sigma_px),
                *_time_fields(q),
            ]
            for q in ir.projections
        ],
        "readout": [ir.readout.populations, ir.readout.pool_size, ir.readout.classes],
    }
    if not ir.dynamics.is_default:
        dynamics = ir.dynamics
        content["dynamics"] = [dynamics.steps, dynamics.input, list(dynamics.readout_range)]
    return json.dumps(content, sort_keys=True, separators=(",", ":"))
