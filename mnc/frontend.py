"""Lower a validated spec to a draft IR: one population per area and layer, one projection
per modelled connection, measured numbers attached, derived numbers left for the passes.

Projections from or to an area that the spec removed are pruned here, and the remaining
sources of a target share its in-degree (their strengths are normalised over what is left).
"""

from __future__ import annotations

from collections import defaultdict

import networkx as nx

from mnc.ir.model import (
    DraftIR,
    Dynamics,
    FixedProfile,
    InputShape,
    InterarealProfile,
    InterlaminarProfile,
    MaskConfig,
    PopulationDraft,
    ProjectionDraft,
    Provenance,
    ReadoutDraft,
)
from mnc.spec.loader import LoadedSpec
from mnc.spec.models import Spec
from mnc.spec.names import INPUT, PopulationCatalog, split_projection_key
from mnc.spec.semantics import interlaminar_areas


def lower_spec(loaded: LoadedSpec) -> DraftIR:
    spec = loaded.spec
    catalog = PopulationCatalog(spec)
    notes: list[str] = []
    pruned: dict[str, list[str]] = defaultdict(list)
    populations = _populations(spec, catalog)
    projections = _projections(spec, catalog, pruned)
    for area, names in sorted(pruned.items()):
        notes.append(
            f"area {area} is removed: {len(names)} projection(s) pruned ({', '.join(names)})"
        )
    order = _topological_order(populations, projections)
    populations.sort(key=lambda population: order[population.name])
    projections.sort(key=lambda projection: (order[projection.source], order[projection.target]))
    readout = [name for name in spec.readout.populations if name in catalog.populations]
    dropped = [name for name in spec.readout.populations if name not in catalog.populations]
    if dropped:
        notes.append(f"readout populations of removed areas dropped: {', '.join(dropped)}")
    return DraftIR(
        name=spec.name,
        input=InputShape(
            channels=spec.input.channels,
            height=spec.input.height_px,
            width=spec.input.width_px,
            pixels_per_degree=spec.input.pixels_per_degree,
        ),
        edge_z=spec.kernel.edge_z,
        mask=MaskConfig(mode=spec.mask.mode, seed=spec.mask.seed),
        dynamics=_dynamics(spec),
        provenance=Provenance(
            spec_name=spec.name,
            spec_files=[str(path) for path in loaded.files],
            sources=_sources(spec),
            notes=notes,
        ),
        populations=populations,
        projections=projections,
        readout=ReadoutDraft(
            populations=readout, pool_size=spec.readout.pool_size, classes=spec.readout.classes
        ),
    )


def _dynamics(spec: Spec) -> Dynamics:
    dynamics = spec.dynamics
    readout = None if isinstance(dynamics.readout, str) else dynamics.readout.mean
    return Dynamics(steps=dynamics.steps, input=dynamics.input, readout_steps=readout)


def _sources(spec: Spec) -> dict[str, str]:
    laminar = spec.interlaminar
    sources = {
        "input": spec.input.source,
        "areas": spec.areas.source,
        "layers": spec.layers.source,
        "neurons": spec.neurons.source,
        "surface_area_mm2": spec.surface_area_mm2.source,
        "interlaminar.projections": laminar.projections_source,
        "interlaminar.connection_probability": laminar.connection_probability.source,
        "interlaminar.width_um": laminar.width_um.source,
        "interlaminar.mouse_scaling": laminar.mouse_scaling.source,
        "interareal": spec.interareal.source,
        "interareal.extrinsic_in_degree": spec.interareal.extrinsic_in_degree_source,
        **({"interareal.feedback_share": spec.interareal.feedback_share_source}
           if spec.interareal.feedback_share_source is not None else {}),
        **({"areas.hierarchy_score": spec.areas.hierarchy_score_source}
           if spec.areas.hierarchy_score_source is not None else {}),
        "fixed_projections": spec.fixed_projections.source,
        "kernel": spec.kernel.source,
        "readout": spec.readout.source,
    }
    for population, note in spec.surface_area_mm2.notes.items():
        sources[f"surface_area_mm2.{population}"] = note
    for entry in laminar.entries():
        if entry.source is not None:
            sources[f"interlaminar.projections.{entry.projection}"] = entry.source
    for key, measured in spec.interareal.projections.items():
        if measured.source is not None:
            sources[f"interareal.projections.{key}"] = measured.source
    for field in ("steps", "input", "readout"):
        cited = getattr(spec.dynamics, f"{field}_source")
        if cited is not None:
            sources[f"dynamics.{field}"] = cited
    return sources


def _populations(spec: Spec, catalog: PopulationCatalog) -> list[PopulationDraft]:
    result = [
        PopulationDraft(
            name=INPUT,
            area=INPUT,
            layer=None,
            hierarchy_level=-1,
            pixels_per_degree=spec.input.pixels_per_degree,
            neurons=None,
            channels=spec.input.channels,
        )
    ]
    for name, population in catalog.populations.items():
        if name == INPUT:
            continue
        region = spec.areas.regions[population.area]
        count = spec.neurons.counts[population.area]
        # laminar areas have a count per layer, others one count (checked by the semantics)
        neurons = count[population.layer or ""] if isinstance(count, dict) else count
        surface = None
        if population.layer is not None:
            surface = spec.surface_area_mm2.values.get(population.area, {}).get(population.layer)
        result.append(
            PopulationDraft(
                name=name,
                area=population.area,
                layer=population.layer,
                hierarchy_level=region.hierarchy_level,
                pixels_per_degree=region.pixels_per_degree,
                neurons=neurons,
                surface_area_mm2=surface,
            )
        )
    return result


def _projections(
    spec: Spec, catalog: PopulationCatalog, pruned: dict[str, list[str]]
) -> list[ProjectionDraft]:
    result: list[ProjectionDraft] = []
    for key, fixed in spec.fixed_projections.projections.items():
        source, target = split_projection_key(key)
        if _kept(source, target, catalog, pruned):
            result.append(
                ProjectionDraft(
                    source=source,
                    target=target,
                    profile=FixedProfile(
                        sigma_px=fixed.sigma_px, peak_probability=fixed.peak_probability
                    ),
                    delay=fixed.delay,
                )
            )
    laminar = spec.interlaminar
    reference_source, reference_target = split_projection_key(laminar.mouse_scaling.reference_pair)
    reference_width = laminar.width_um.table[reference_source][reference_target]
    for entry in laminar.entries():
        source_layer, target_layer = split_projection_key(entry.projection)
        for area in entry.areas or []:
            if area not in spec.areas.regions:  # named, but removed by a variant
                pruned[area].append(f"{area}{source_layer}->{area}{target_layer}")
        for area in interlaminar_areas(spec, entry.areas):
            result.append(
                ProjectionDraft(
                    source=f"{area}{source_layer}",
                    target=f"{area}{target_layer}",
                    delay=entry.delay,
                    profile=InterlaminarProfile(
                        probability_at_offset=laminar.connection_probability.table[source_layer][
                            target_layer
                        ],
                        offset_um=laminar.connection_probability.offset_um,
                        cat_width_um=laminar.width_um.table[source_layer][target_layer],
                        cat_reference_width_um=reference_width,
                        mouse_reference_width_um=laminar.mouse_scaling.width_um,
                    ),
                )
            )
    kept_interareal = []
    for key, measured in spec.interareal.projections.items():
        source, target = split_projection_key(key)
        if _kept(source, target, catalog, pruned):
            kept_interareal.append((source, target, measured))
    # With a feedback share, delayed sources share their part of the in-degree apart from
    # the delay-0 ones; without, all of a target's sources share one in-degree.
    share = spec.interareal.feedback_share
    totals: dict[tuple[str, bool], float] = defaultdict(float)
    for _source, target, measured in kept_interareal:
        totals[(target, share is not None and measured.delay > 0)] += measured.strength
    for source, target, measured in kept_interareal:
        in_degree = spec.interareal.in_degree_per_target.get(
            target, spec.interareal.extrinsic_in_degree
        )
        delayed = share is not None and measured.delay > 0
        result.append(
            ProjectionDraft(
                source=source,
                target=target,
                profile=InterarealProfile(
                    strength=measured.strength,
                    strength_total=totals[(target, delayed)],
                    sigma_mm=measured.sigma_mm,
                    in_degree=in_degree,
                    feedback_share=share if delayed else None,
                ),
                delay=measured.delay,
            )
        )
    return result


def _kept(
    source: str, target: str, catalog: PopulationCatalog, pruned: dict[str, list[str]]
) -> bool:
    """False for a projection touching a removed area; it is recorded under that area."""
    for name in (source, target):
        area = catalog.removed_area_of(name)
        if area is not None:
            pruned[area].append(f"{source}->{target}")
            return False
    return True


def _topological_order(
    populations: list[PopulationDraft], projections: list[ProjectionDraft]
) -> dict[str, int]:
    """Populations ordered so that every delay-0 projection runs forward (delayed ones may
    run backwards: their input comes from an earlier step); ties keep the spec's order."""
    listed = {population.name: index for index, population in enumerate(populations)}
    graph = nx.DiGraph()
    graph.add_nodes_from(listed)
    graph.add_edges_from((projection.source, projection.target) for projection in projections
                         if projection.delay == 0)
    ordered = nx.lexicographical_topological_sort(graph, key=lambda name: listed[name])
    return {name: index for index, name in enumerate(ordered)}
