"""A networkx view of the IR for graph questions (ancestors, paths, depth)."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from mnc.errors import UsageError
from mnc.ir.model import IR
from mnc.text import suggest


def ir_graph(ir: IR) -> nx.DiGraph:
    """Populations as nodes (attribute ``population``), projections as edges (``projection``)."""
    graph = nx.DiGraph(name=ir.name)
    for population in ir.populations:
        graph.add_node(population.name, population=population)
    for projection in ir.projections:
        graph.add_edge(projection.source, projection.target, projection=projection)
    return graph


def ancestors(ir: IR, targets: Iterable[str]) -> set[str]:
    """The named populations and every population they read from, directly or not (the one
    ancestor search: backends plan their execution with it). An unknown name is a UsageError
    that suggests the nearest."""
    sources: dict[str, list[str]] = {name: [] for name in ir.population_names()}
    for projection in ir.projections:
        sources[projection.target].append(projection.source)
    needed: set[str] = set()
    stack = list(targets)
    for name in stack:
        if name not in sources:
            raise UsageError(f"no population {name!r} in {ir.name}"
                             f"{suggest(name, ir.population_names())}")
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(sources[name])
    return needed


def required_populations(ir: IR, names: Iterable[str]) -> list[str]:
    """The requested populations and every population they depend on, in execution order."""
    needed = ancestors(ir, names)
    return [name for name in ir.population_names() if name in needed]


def longest_path_length(ir: IR) -> int:
    """Number of projections on the longest path from the input (the network's depth)."""
    return int(nx.dag_longest_path_length(ir_graph(ir)))
