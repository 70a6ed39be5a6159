from __future__ import annotations

import pytest

from mnc.compiler import compile_ir
from mnc.errors import UsageError
from mnc.ir.graph import ir_graph, longest_path_length, required_populations
from tests.conftest import DEFAULT_SPEC


@pytest.fixture(scope="module")
def ir():
    return compile_ir(DEFAULT_SPEC)


def test_graph_has_every_population_and_projection(ir):
    graph = ir_graph(ir)
    assert graph.number_of_nodes() == 23 and graph.number_of_edges() == 49
    assert graph.edges["VISp4", "VISl4"]["projection"].kernel_size == 19


def test_required_populations_are_ancestors_in_order(ir):
    assert required_populations(ir, ["VISp2/3"]) == ["input", "LGNd", "VISp4", "VISp2/3"]
    needed = required_populations(ir, ["VISl4"])
    assert needed[-1] == "VISl4" and "VISp5" in needed and "VISrl4" not in needed


def test_unknown_population_suggests(ir):
    with pytest.raises(UsageError, match="did you mean 'VISpor4'"):
        required_populations(ir, ["VISpor44"])


def test_depth(ir):
    # input -> LGNd -> VISp4 -> VISp2/3 -> VISp5 -> VISl4 -> VISl2/3 -> VISl5 -> VISpor4
    # -> VISpor2/3 -> VISpor5
    assert longest_path_length(ir) == 10
