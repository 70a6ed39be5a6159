"""Checks that relate several blocks of a spec: names, tables and the shape of the graph.

Each check adds problems rather than stopping, so a file with several mistakes is reported
in one go. Checks of derived numbers (grids, channels) happen in the passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from mnc.errors import SpecProblem
from mnc.ir.keys import key_collisions, population_key, projection_key
from mnc.spec.names import INPUT, NameStatus, PopulationCatalog, split_projection_key
from mnc.spec.yaml_reader import FieldPath, format_field_path

if TYPE_CHECKING:
    from mnc.spec.loader import LoadedSpec
    from mnc.spec.models import Spec


@dataclass(frozen=True)
class Edge:
    """One projection of the modelled graph and where the spec defines it."""

    source: str
    target: str
    path: FieldPath
    """Field path of the entry (the interlaminar list item, the projection's key)."""
    delay: int
    delay_path: FieldPath
    """Field path at which the delay is set (or would be)."""
    key: str
    """The key as the spec writes it ("5->2/3" for an interlaminar entry)."""

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


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
    _check_dynamics(loaded, problems)
    _check_citations(loaded, problems)
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


def _interlaminar_path(loaded: LoadedSpec, index: int) -> FieldPath:
    """The key's field path: the list item, or its ``projection`` field in the mapping form."""
    item = loaded.spec.interlaminar.projections[index]
    return ("interlaminar", "projections", index) + (() if isinstance(item, str)
                                                     else ("projection",))


def _check_interlaminar(loaded: LoadedSpec, problems: _Problems) -> None:
    spec = loaded.spec
    layers = spec.layers.names
    laminar = spec.interlaminar
    probability = laminar.connection_probability.table
    width = laminar.width_um.table
    for index, entry in enumerate(laminar.entries()):
        key = entry.projection
        source, target = split_projection_key(key)
        path = _interlaminar_path(loaded, index)
        _check_interlaminar_areas(loaded, index, problems)
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


def _check_interlaminar_areas(loaded: LoadedSpec, index: int, problems: _Problems) -> None:
    """Areas named by an interlaminar entry are laminar areas of the spec (or removed ones)."""
    spec = loaded.spec
    areas = spec.interlaminar.entries()[index].areas or []
    removed = set(spec.neurons.counts) | set(spec.surface_area_mm2.values)
    for position, area in enumerate(areas):
        path: FieldPath = ("interlaminar", "projections", index, "areas", position)
        region = spec.areas.regions.get(area)
        if region is None and area not in removed:
            problems.add(path, f"unknown area {area!r}"
                               f"{_did_you_mean(area, spec.areas.regions)}")
        elif region is not None and not region.laminar:
            problems.add(path, f"area {area!r} is not laminar (areas.regions.{area}.laminar is "
                               "false): it has no layers to connect")
        elif area in areas[:position]:
            problems.add(path, f"area {area!r} is listed twice")


def interlaminar_areas(spec: Spec, areas: list[str] | None) -> list[str]:
    """The modelled laminar areas an interlaminar entry applies to, in the spec's order."""
    return [name for name, region in spec.areas.regions.items()
            if region.laminar and (areas is None or name in areas)]


def _check_endpoint(
    name: str, path: FieldPath, catalog: PopulationCatalog, problems: _Problems
) -> NameStatus:
    status = catalog.status(name)
    if status is NameStatus.UNKNOWN:
        problems.add(path, f"unknown population {name!r}{_did_you_mean(name, catalog.names())}")
    return status


def _check_projections(
    loaded: LoadedSpec, catalog: PopulationCatalog, problems: _Problems
) -> list[Edge]:
    """Check every projection's endpoints; return the edges of the modelled graph."""
    edges = _interlaminar_edges(loaded)
    edges += _measured_edges(loaded.spec, catalog, problems)
    _check_duplicate_edges(edges, problems)
    _check_source_surfaces(loaded.spec, catalog, edges, problems)
    for target in loaded.spec.interareal.in_degree_per_target:
        if catalog.status(target) is NameStatus.UNKNOWN:
            problems.add(
                ("interareal", "in_degree_per_target", target),
                f"unknown population {target!r}{_did_you_mean(target, catalog.names())}",
            )
    return edges


def _interlaminar_edges(loaded: LoadedSpec) -> list[Edge]:
    """One edge per interlaminar projection and area it applies to."""
    spec = loaded.spec
    edges: list[Edge] = []
    for index, entry in enumerate(spec.interlaminar.entries()):
        source, target = split_projection_key(entry.projection)
        entry_path = _interlaminar_path(loaded, index)
        delay_path = entry_path if isinstance(spec.interlaminar.projections[index], str) else (
            "interlaminar", "projections", index, "delay")
        for area in interlaminar_areas(spec, entry.areas):
            edges.append(Edge(f"{area}{source}", f"{area}{target}", entry_path, entry.delay,
                              delay_path, entry.projection))
    return edges


def _measured_edges(spec: Spec, catalog: PopulationCatalog, problems: _Problems) -> list[Edge]:
    """The edges of the fixed and interareal projections whose endpoints both exist; a
    problem for each unknown endpoint or misuse of ``input``."""
    edges: list[Edge] = []
    blocks = (
        ("fixed_projections", spec.fixed_projections.projections),
        ("interareal", spec.interareal.projections),
    )
    for block, projections in blocks:
        for key, measured in projections.items():
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
                edges.append(Edge(source, target, path, measured.delay, path + ("delay",), key))
    return edges


def _check_duplicate_edges(edges: list[Edge], problems: _Problems) -> None:
    seen: dict[tuple[str, str], FieldPath] = {}
    for edge in edges:
        if (edge.source, edge.target) in seen:
            problems.add(
                edge.path,
                f"projection {edge.name} is also defined at "
                f"{format_field_path(seen[(edge.source, edge.target)])}",
            )
        seen[(edge.source, edge.target)] = edge.path


def _check_source_surfaces(spec: Spec, catalog: PopulationCatalog, edges: list[Edge],
                           problems: _Problems) -> None:
    """Every source of a measured (not fixed) projection needs a surface area."""
    surfaces = spec.surface_area_mm2.values
    for edge in edges:
        if edge.path[0] == "fixed_projections":
            continue
        source, path = edge.source, edge.path
        population = catalog.populations[source]
        if population.layer is None or population.layer not in surfaces.get(population.area, {}):
            problems.add(
                path,
                f"source {source} needs a surface area: add "
                f"surface_area_mm2.values.{population.area}.{population.layer or '?'}",
            )


def _population_path(catalog: PopulationCatalog, name: str) -> FieldPath:
    population = catalog.populations[name]
    return ("areas", "regions", population.area)


def _check_module_keys(catalog: PopulationCatalog, edges: list[Edge],
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
    for first, later, key in key_collisions(edges, lambda edge: projection_key(edge.source,
                                                                               edge.target)):
        source, target, path = edges[later].source, edges[later].target, edges[later].path
        other_source, other_target = edges[first].source, edges[first].target
        other_path = edges[first].path
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


def _check_dynamics(loaded: LoadedSpec, problems: _Problems) -> None:
    dynamics = loaded.spec.dynamics
    given = dynamics.model_fields_set
    for field in ("steps", "input", "readout"):
        if field in given and f"{field}_source" not in given:
            problems.add(("dynamics", field),
                         f"dynamics.{field} is set without dynamics.{field}_source: cite where "
                         "the value comes from, or write ASSUMED and why")
    readout = dynamics.readout
    if not isinstance(readout, str):
        first, last = readout.mean
        if not first <= last < dynamics.steps:
            problems.add(("dynamics", "readout", "mean"),
                         f"expected [first, last] with 0 <= first <= last < {dynamics.steps} "
                         f"(steps are counted from 0 and dynamics.steps is {dynamics.steps}), "
                         f"got [{first}, {last}]")


def _check_citations(loaded: LoadedSpec, problems: _Problems) -> None:
    """Measured hierarchy scores and the feedback share need their sources."""
    spec = loaded.spec
    if spec.areas.hierarchy_score_source is None:
        for area, region in spec.areas.regions.items():
            if region.hierarchy_score is not None:
                problems.add(("areas", "regions", area, "hierarchy_score"),
                             "hierarchy_score is set without areas.hierarchy_score_source: "
                             "cite where the scores come from")
    interareal = spec.interareal
    if interareal.feedback_share is not None and interareal.feedback_share_source is None:
        problems.add(("interareal", "feedback_share"),
                     "feedback_share is set without interareal.feedback_share_source: cite "
                     "where it comes from, or write ASSUMED and why")


def _level(spec: Spec, catalog: PopulationCatalog, name: str) -> int:
    if name == INPUT:
        return -1
    return spec.areas.regions[catalog.populations[name].area].hierarchy_level


def _check_delays(loaded: LoadedSpec, catalog: PopulationCatalog, edges: list[Edge],
                  problems: _Problems) -> set[int]:
    """Lateral and feedback projections need a delay; every delay must fit in the run.
    One message per spec entry (an interlaminar entry stands for one projection per area).
    Returns the indices of the edges reported here (left out of the cycle search)."""
    spec = loaded.spec
    steps = spec.dynamics.steps
    reported: set[int] = set()
    found: dict[tuple[FieldPath, str], list[Edge]] = {}
    for index, edge in enumerate(edges):
        source_level = _level(spec, catalog, edge.source)
        target_level = _level(spec, catalog, edge.target)
        if edge.delay == 0 and edge.source == edge.target:
            kind = "lateral (a population onto itself)"
        elif edge.delay == 0 and source_level > target_level:
            kind = f"feedback (hierarchy level {source_level} onto level {target_level})"
        elif edge.delay >= steps:
            kind = "never arrives"
        else:
            continue
        if kind != "never arrives":
            reported.add(index)
        found.setdefault((edge.delay_path, kind), []).append(edge)
    for (path, kind), group in found.items():
        names = ", ".join(edge.name for edge in group)
        edge = group[0]
        if kind == "never arrives":
            problems.add(path, f"{names} {'has' if len(group) == 1 else 'have'} delay "
                               f"{edge.delay} but the network runs {steps} step(s) "
                               f"(dynamics.steps): the input would never arrive; set "
                               f"dynamics.steps to more than {edge.delay}")
        else:
            problems.add(path, f"{names} {'is' if len(group) == 1 else 'are'} {kind}: a "
                               f"delay >= 1 step is needed ({_write_delay(edge)})")
    return reported


def _write_delay(edge: Edge) -> str:
    """How to give ``edge`` a delay in its own block."""
    if edge.path == edge.delay_path:  # a bare interlaminar key
        return f'write the entry as {{projection: "{edge.key}", delay: 1}}'
    return f"set {format_field_path(edge.delay_path)}: 1"


def _check_graph(
    loaded: LoadedSpec,
    catalog: PopulationCatalog,
    edges: list[Edge],
    problems: _Problems,
) -> None:
    reported = _check_delays(loaded, catalog, edges, problems)
    undelayed = nx.DiGraph()
    undelayed.add_nodes_from(catalog.names())
    for index, edge in enumerate(edges):
        if edge.delay == 0 and index not in reported:
            undelayed.add_edge(edge.source, edge.target, edge=edge)
    try:
        cycle = nx.find_cycle(undelayed)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        _report_cycle(loaded, catalog, [undelayed.edges[pair]["edge"] for pair in cycle],
                      problems)
        return
    graph = nx.DiGraph()
    graph.add_nodes_from(catalog.names())
    graph.add_edges_from((edge.source, edge.target) for edge in edges)
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


def _report_cycle(loaded: LoadedSpec, catalog: PopulationCatalog, cycle: list[Edge],
                  problems: _Problems) -> None:
    """Name the cycle and the projection to delay: the one that runs most against the order
    of the spec (hierarchy level, then the order areas and layers are listed)."""
    spec = loaded.spec
    names = catalog.names()

    def rank(name: str) -> tuple[int, int]:
        return _level(spec, catalog, name), names.index(name)

    loop = " -> ".join([edge.source for edge in cycle] + [cycle[0].source])
    backwards = [edge for edge in cycle if rank(edge.source) >= rank(edge.target)]
    chosen = max(backwards or cycle, key=lambda edge: (rank(edge.source), rank(edge.target)))
    where = f"{format_field_path(chosen.path)}, {loaded.locate(chosen.path)}"
    problems.add(chosen.delay_path,
                 f"projections with delay 0 form a cycle ({loop}); a delay-0 projection must "
                 f"feed forward: give {chosen.name} (at {where}) a delay >= 1 step "
                 f"({_write_delay(chosen)}), or remove a projection of the cycle")


def _did_you_mean(name: str, candidates: object) -> str:
    from mnc.text import suggest

    return suggest(name, list(candidates))  # type: ignore[call-overload]
