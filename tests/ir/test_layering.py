"""The IR is the contract between the front end and the backends: it depends on neither."""

from __future__ import annotations

import ast
from pathlib import Path

IR_PACKAGE = Path(__file__).resolve().parents[2] / "mnc" / "ir"
FORBIDDEN = ("mnc.spec", "mnc.passes", "mnc.frontend", "mnc.compiler", "mnc_backends", "mnc.cli")


def test_the_ir_imports_no_spec_pass_or_backend_module():
    found = []
    for path in sorted(IR_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [])
            found += [f"{path.name}: {name}" for name in names if name.startswith(FORBIDDEN)]
    assert not found
