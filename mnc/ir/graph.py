"""A networkx view of the IR for graph questions (ancestors, paths, depth)."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from mnc.errors import UsageError
from mnc.ir.model import IR
from mnc.spec.loader import suggest


def ir_graph(ir: IR) -> nx.DiGraph:
    """Populations as nodes (attribute ``population``), projections as edges (``projection``)."""
    graph = nx.DiGraph(name=ir.name)
    for population in ir.populations:
        graph.add_node(population.name, population=population)
    for projection in ir.projections:
        graph.add_edge(projection.source, projection.target, projection=projection)
    return graph


def required_populations(ir: IR, names: Iterable[str]) -> list[str]:
    """The requested populations and every population they depend on, in execution order."""
    graph = ir_graph(ir)
    needed: set[str] = set()
    for name in names:
        if name not in graph:
            raise UsageError(f"no population {name!r} in {ir.name}"
                             f"{suggest(name, ir.population_names())}")
        needed |= nx.ancestors(graph, name) | {name}
    return [name for name in ir.population_names() if name in needed]


def longest_path_length(ir: IR) -> int:
    """Number of projections on the longest path from the input (the network's depth)."""
    return int(nx.dag_longest_path_length(ir_graph(ir)))
