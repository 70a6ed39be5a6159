"""mnc, the MouseNet compiler: anatomical measurements -> validated IR -> trainable networks.

The pipeline reads left to right::

    specs/mouse.yaml            YAML measurements, each block with its source
      -> mnc.spec.load_spec     safe YAML, `extends`, pydantic validation, semantic checks
      -> mnc.frontend           draft IR: populations and projections with measured inputs
      -> mnc.passes             size-grids, count-channels, match-grids, scale-widths,
                                size-kernels, set-peak-probabilities, size-readout
      -> mnc.ir.IR              resolved IR with a content hash
      -> backends (mnc_backends.torch, mnc_backends.onnx, plug-ins via entry points)

For example::

    >>> import mnc
    >>> ir = mnc.compile_ir("specs/mouse.yaml")
    >>> ir.population("VISp4").channels, ir.projection("VISp4->VISl4").kernel_size
    (26, 19)
    >>> model = mnc.compile("specs/mouse.yaml", backend="torch")   # a torch.nn.Module
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mnc.ir.model import IR

__all__ = ["__version__", "compile", "compile_ir", "load"]


def compile_ir(path: Any, dump_dir: Any = None) -> IR:
    """Compile a spec file to the resolved IR (see ``mnc.compiler.compile_ir``)."""
    from mnc.compiler import compile_ir as _compile_ir

    return _compile_ir(path, dump_dir)


def compile(spec: Any, backend: str = "torch", **options: Any) -> Any:
    """Compile a spec with a backend (see ``mnc.api.compile``)."""
    from mnc.api import compile as _compile

    return _compile(spec, backend, **options)


def load(path: Any) -> Any:
    """Load a saved model or training checkpoint (see ``mnc.api.load``)."""
    from mnc.api import load as _load

    return _load(path)
