"""The Python API behind the command line: compile specs, load saved models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnc.backend import BackendOptions, get_backend
from mnc.compiler import compile_ir
from mnc.ir.model import IR


def compile(
    spec: str | Path | IR,
    backend: str = "torch",
    *,
    weights: str | Path | None = None,
    outputs: tuple[str, ...] = (),
    **extra: Any,
) -> Any:
    """Compile a spec file (or an already compiled IR) with the named backend.

    ``mnc.compile("specs/mouse.yaml", backend="torch")`` returns a ``torch.nn.Module``.
    """
    ir = spec if isinstance(spec, IR) else compile_ir(spec)
    options = BackendOptions(
        weights=Path(weights) if weights else None, outputs=tuple(outputs), extra=extra
    )
    return get_backend(backend).compile(ir, options)


def load(path: str | Path) -> Any:
    """Load a model saved by ``mnc compile -o model.pt`` or a training checkpoint."""
    backend = get_backend("torch")
    return backend.load(Path(path))
