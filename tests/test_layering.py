"""The code keeps its layer order: no module imports a layer above its own, and no imports form
a cycle. Every import counts, at module level or inside a function (an import deferred to a
function still ties the lower layer to the higher one); only ``if TYPE_CHECKING:`` blocks are
left out. docs/architecture.md draws the same map for a newcomer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

from tests.conftest import ROOT

FACADE = "mnc"
"""The package itself (mnc/__init__.py); matched exactly, never as a prefix."""

# Lowest first. A module belongs to the longest prefix listed; a layer may import its own and
# lower layers only.
LAYERS: list[tuple[str, ...]] = [
    # Leaves every layer may use: message rules, errors, progress, extras, limits policy.
    ("mnc.text", "mnc.errors", "mnc.progress", "mnc.extras", "mnc.limits", "mnc.mask_modes",
     "mnc.strategies", "mnc.version", "mnc.class_names"),
    # Files: atomic writes, bounded readers, output folders.
    ("mnc.io",),
    # The intermediate representation: models, field ranges, invariants, JSON.
    ("mnc.ir",),
    # Specs: YAML reading, models, semantic checks, the shipped specs.
    ("mnc.spec",),
    # Rules below the IR that every backend shares, and costs read off the IR.
    ("mnc.lowering", "mnc.analysis", "mnc.masks", "mnc.imaging"),
    # The compiler and the public Python API.
    # The training run's options sit here, below the torch trainer they configure, so that
    # ``mnc train --help`` needs no torch.
    ("mnc.passes", "mnc.frontend", "mnc.compiler", "mnc.backend", "mnc.api", "mnc.schema",
     "mnc.catalog", "mnc.diff", "mnc.explain", "mnc.draw", "mnc.model_card", "mnc.train_options"),
    # Backends: torch (module, fast strategies, weights) and ONNX.
    ("mnc_backends",),
    # Sources of recorded responses (Brain Observatory cache, files, synthetic cells), read into
    # one in-memory form, and which cortical layer a recording samples: they know nothing of
    # models or analyses.
    ("mnc.neuro.sources", "mnc.neuro.layers"),
    # Applications built on compiled networks.
    ("mnc.neuro", "mnc.measure", "mnc_backends.torch.training"),
    # The package's facade: ``import mnc`` offers a call for every command (compile, train,
    # evaluate, ...), so it sits above what it offers; nothing below imports it.
    (FACADE,),
    # The command line.
    ("mnc.cli", "mnc.__main__"),
]

def _modules() -> dict[str, Path]:
    modules = {}
    for folder, package in ((ROOT / "mnc", "mnc"), (ROOT / "backends", "mnc_backends")):
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(inner) for inner in ast.walk(node)}
    return skipped


def _resolve(name: str) -> str | None:
    """The project module ``name`` is, or lies in; None outside the project."""
    while name not in MODULES:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    named: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, *([node.module] if node.module else [])])
            submodules = {f"{base}.{alias.name}" for alias in node.names
                          if f"{base}.{alias.name}" in MODULES}
            named |= submodules
            if len(submodules) < len(node.names):
                named.add(base)
    found = {_resolve(name) for name in named}
    # A module's own packages are not imports of a lower layer: Python runs them first anyway.
    return {name for name in found
            if name and name != module and not module.startswith(name + ".")}


def _layer(module: str) -> int:
    matches = [(len(prefix), index) for index, prefixes in enumerate(LAYERS)
               for prefix in prefixes if module == prefix
               or (prefix != FACADE and module.startswith(prefix + "."))]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


GRAPH = nx.DiGraph([(module, imported) for module, path in MODULES.items()
                    for imported in _imports(module, path)])


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(f"{module} -> {imported}" for module, imported in GRAPH.edges
                    if _layer(imported) > _layer(module))
    assert not upward, "imports up the layer order:\n" + "\n".join(upward)


def test_imports_form_no_cycle():
    cycles = [" -> ".join(cycle) for cycle in nx.simple_cycles(GRAPH)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles[:10])


def test_the_walk_sees_function_level_imports_and_skips_type_checking_ones(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from mnc.analysis.cost import network_cost\n"
                    "def view(ir):\n    from mnc.analysis.display import ir_text\n")
    assert _imports("mnc.ir.model", path) == {"mnc.analysis.display"}
