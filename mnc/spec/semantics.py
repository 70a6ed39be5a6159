"""Checks that relate several blocks of a spec: names, tables and the shape of the graph.

Each check adds problems rather than stopping, so a file with several mistakes is reported
in one go. Checks of derived numbers (grids, channels) happen in the passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from mnc.errors import SpecProblem
from mnc.ir.keys import key_collisions, population_key, projection_key
from mnc.spec.names import INPUT, NameStatus, PopulationCatalog, split_projection_key
from mnc.spec.yaml_reader import FieldPath, format_field_path

if TYPE_CHECKING:
    from mnc.spec.loader import LoadedSpec


class _Problems:
    def __init__(self, loaded: LoadedSpec):
        self.loaded = loaded
        self.items: list[SpecProblem] = []

    def add(self, path: FieldPath, message: str) -> None:
        self.items.append(SpecProblem(self.loaded.locate(path), format_field_path(path), message))


def check_semantics(loaded: LoadedSpec) -> list[SpecProblem]:
    problems = _Problems(loaded)
    catalog = PopulationCatalog(loaded.spec)
    _check_layers(loaded, problems)
    _check_neurons(loaded, catalog, problems)
    _check_interlaminar(loaded, problems)
    edges = _check_projections(loaded, catalog, problems)
    _check_module_keys(catalog, edges, problems)
    _check_readout(loaded, catalog, problems)
    if not problems.items:
        _check_graph(loaded, catalog, edges, problems)
    return problems.items


def _check_layers(loaded: LoadedSpec, problems: _Problems) -> None:
    names = loaded.spec.layers.names
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.add(("layers", "names", index), f"layer {name!r} is listed twice")


def _check_neurons(loaded: LoadedSpec, catalog: PopulationCatalog, problems: _Problems) -> None:
    spec = loaded.spec
    counts = spec.neurons.counts
    for area, region in spec.areas.regions.items():
        path: FieldPath = ("neurons", "counts", area)
        if area not in counts:
            problems.add(
                ("neurons", "counts"),
                f"no neuron count for area {area!r}{_did_you_mean(area, counts)}",
            )
            continue
        entry = counts[area]
        if not region.laminar:
            if isinstance(entry, dict):
                problems.add(
                    path,
                    f"area {area!r} is not laminar (areas.regions.{area}.laminar "
                    "is false): expected one count, got a table of layers",
                )
            continue
        if not isinstance(entry, dict):
            problems.add(
                path,
                f"area {area!r} is laminar: expected a count per layer "
                f"({', '.join(spec.layers.names)}), got a single number",
            )
            continue
        for layer in spec.layers.names:
            if layer not in entry:
                problems.add(path, f"no neuron count for layer {layer!r} of {area}")


def _check_interlaminar(loaded: LoadedSpec, problems: _Problems) -> None:
    spec = loaded.spec
    layers = spec.layers.names
    laminar = spec.interlaminar
    probability = laminar.connection_probability.table
    width = laminar.width_um.table
    for index, key in enumerate(laminar.projections):
        source, target = split_projection_key(key)
        path: FieldPath = ("interlaminar", "projections", index)
        bad = [layer for layer in (source, target) if layer not in layers]
        for layer in bad:
            problems.add(
                path,
                f"layer {layer!r} is not modelled{_did_you_mean(layer, layers)}; "
                f"layers.names lists {layers}",
            )
        if bad:
            continue
        if target not in probability.get(source, {}):
            problems.add(
                ("interlaminar", "connection_probability", "table"),
                f"no probability for layer {source} -> {target} (needed by {key!r})",
            )
        if width.get(source, {}).get(target, 0) <= 0:
            problems.add(
                ("interlaminar", "width_um", "table"),
                f"no positive width for layer {source} -> {target} (needed by {key!r})",
            )
    reference_source, reference_target = split_projection_key(laminar.mouse_scaling.reference_pair)
    if width.get(reference_source, {}).get(reference_target, 0) <= 0:
        problems.add(
            ("interlaminar", "mouse_scaling", "reference_pair"),
            f"the width table has no positive width for the reference pair "
            f"{laminar.mouse_scaling.reference_pair!r}",
        )


def _check_endpoint(
    name: str, path: FieldPath, catalog: PopulationCatalog, problems: _Problems
) -> NameStatus:
    status = catalog.status(name)
    if status is NameStatus.UNKNOWN:
        problems.add(path, f"unknown population {name!r}{_did_you_mean(name, catalog.names())}")
    return status


def _check_projections(
    loaded: LoadedSpec, catalog: PopulationCatalog, problems: _Problems
) -> list[tuple[str, str, FieldPath]]:
    """Check every projection's endpoints; return the edges of the modelled graph."""
    spec = loaded.spec
    edges: list[tuple[str, str, FieldPath]] = []
    for area, region in spec.areas.regions.items():
        if not region.laminar:
            continue
        for index, key in enumerate(spec.interlaminar.projections):
            source, target = split_projection_key(key)
            edges.append(
                (f"{area}{source}", f"{area}{target}", ("interlaminar", "projections", index))
            )
    blocks = (
        ("fixed_projections", spec.fixed_projections.projections),
        ("interareal", spec.interareal.projections),
    )
    for block, projections in blocks:
        for key in projections:
            path: FieldPath = (block, "projections", key)
            source, target = split_projection_key(key)
            statuses = [
                _check_endpoint(source, path, catalog, problems),
                _check_endpoint(target, path, catalog, problems),
            ]
            if target == INPUT:
                problems.add(path, "nothing can project to 'input'")
            if block == "interareal" and source == INPUT:
                problems.add(path, "'input' can only feed a fixed projection")
            if all(status is NameStatus.PRESENT for status in statuses):
                edges.append((source, target, path))
    seen: dict[tuple[str, str], FieldPath] = {}
    for source, target, path in edges:
        if (source, target) in seen:
            problems.add(
                path,
                f"projection {source}->{target} is also defined at "
                f"{format_field_path(seen[(source, target)])}",
            )
        seen[(source, target)] = path
    surfaces = spec.surface_area_mm2.values
    for source, _target, path in edges:
        if path[0] == "fixed_projections":
            continue
        population = catalog.populations[source]
        if population.layer is None or population.layer not in surfaces.get(population.area, {}):
            problems.add(
                path,
                f"source {source} needs a surface area: add "
                f"surface_area_mm2.values.{population.area}.{population.layer or '?'}",
            )
    for target in spec.interareal.in_degree_per_target:
        if catalog.status(target) is NameStatus.UNKNOWN:
            problems.add(
                ("interareal", "in_degree_per_target", target),
                f"unknown population {target!r}{_did_you_mean(target, catalog.names())}",
            )
    return edges


def _population_path(catalog: PopulationCatalog, name: str) -> FieldPath:
    population = catalog.populations[name]
    return ("areas", "regions", population.area)


def _check_module_keys(catalog: PopulationCatalog, edges: list[tuple[str, str, FieldPath]],
                       problems: _Problems) -> None:
    """Every population and projection needs a module key of its own (``mnc.ir.keys``: "/"
    becomes "_", "->" becomes "__"); two names sharing one would build one layer for both."""
    names = catalog.names()
    for first, later, key in key_collisions(names, population_key):
        earlier_path = _population_path(catalog, names[first])
        problems.add(
            _population_path(catalog, names[later]),
            f"population {names[later]!r} and population {names[first]!r} (at "
            f"{format_field_path(earlier_path)}, {problems.loaded.locate(earlier_path)}) "
            f"share the module key {key!r} ('/' is written '_'); rename one of the areas",
        )
    for first, later, key in key_collisions(edges, lambda edge: projection_key(*edge[:2])):
        source, target, path = edges[later]
        other_source, other_target, other_path = edges[first]
        ends = (population_key(source), population_key(target))
        if ends == (population_key(other_source), population_key(other_target)):
            continue  # reported above: colliding populations, or a repeated projection
        problems.add(
            path,
            f"projection {source}->{target} and projection {other_source}->{other_target} "
            f"(at {format_field_path(other_path)}, {problems.loaded.locate(other_path)}) "
            f"share the module key {key!r}; rename one of the areas",
        )


def _check_readout(loaded: LoadedSpec, catalog: PopulationCatalog, problems: _Problems) -> None:
    populations = loaded.spec.readout.populations
    kept = []
    for index, name in enumerate(populations):
        status = _check_endpoint(name, ("readout", "populations", index), catalog, problems)
        if name == INPUT:
            problems.add(("readout", "populations", index), "the readout cannot pool 'input'")
        if status is NameStatus.PRESENT:
            kept.append(name)
        if name in populations[:index]:
            problems.add(("readout", "populations", index), f"{name!r} is listed twice")
    if populations and not kept and not problems.items:
        problems.add(
            ("readout", "populations"),
            "every readout population belongs to a removed area; list at least one "
            "population of the model",
        )


def _check_graph(
    loaded: LoadedSpec,
    catalog: PopulationCatalog,
    edges: list[tuple[str, str, FieldPath]],
    problems: _Problems,
) -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(catalog.names())
    for source, target, edge_path in edges:
        graph.add_edge(source, target, path=edge_path)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        loop = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        problems.add(
            graph.edges[cycle[-1][0], cycle[-1][1]]["path"],
            f"projections form a cycle ({loop}); the network must be feed-forward",
        )
        return
    reachable = nx.descendants(graph, INPUT) | {INPUT}
    for name in catalog.names():
        if name in reachable:
            continue
        population = catalog.populations[name]
        path: FieldPath = ("areas", "regions", population.area)
        if graph.in_degree(name) == 0:
            problems.add(
                path,
                f"population {name} has no input: no projection in the spec "
                "targets it (was its source area removed?)",
            )
        else:
            problems.add(path, f"population {name} is not reachable from the input")


def _did_you_mean(name: str, candidates: object) -> str:
    from mnc.text import suggest

    return suggest(name, list(candidates))  # type: ignore[call-overload]
