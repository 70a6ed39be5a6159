"""The Python API behind the command line: compile specs, save and load models, list specs.

Training and evaluation (``mnc.train``, ``mnc.evaluate``) run in the torch backend's
training package; the package root hands them over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnc.backend import BackendOptions, get_backend
from mnc.compiler import compile_ir
from mnc.errors import UsageError, UserFileError
from mnc.ir.model import IR

IR_BACKEND = "ir"
"""``backend="ir"``: the resolved IR itself (what ``mnc compile --emit ir`` writes)."""


def compile(
    spec: str | Path | IR,
    backend: str = "torch",
    *,
    weights: str | Path | None = None,
    outputs: tuple[str, ...] = (),
    **extra: Any,
) -> Any:
    """Compile a spec (shipped name or file) or an already compiled IR with a backend.

    ``backend="ir"`` returns the resolved ``IR``; ``"torch"`` a ``torch.nn.Module``;
    ``"onnx"`` an ``onnx.ModelProto``.
    """
    ir = spec if isinstance(spec, IR) else compile_ir(spec)
    if backend == IR_BACKEND:
        given = [name for name, value in (("weights", weights), ("outputs", outputs))
                 if value] + sorted(extra)
        if given:
            raise UsageError(f"backend 'ir' takes no options (got {', '.join(given)})")
        return ir
    options = BackendOptions(
        weights=Path(weights) if weights else None, outputs=tuple(outputs), extra=extra
    )
    return get_backend(backend).compile(ir, options)


def save(model: Any, path: str | Path, **options: Any) -> Path:
    """Write what ``compile`` returned: an IR as JSON, a torch network as a ``.pt`` model file
    (``mnc.load`` reads it back), an ONNX graph as ``.onnx``. Returns the path written.

    ``options`` go to the backend (e.g. ``emit="python"`` for the torch network's source).
    """
    from mnc.io.atomic import write_text_atomic

    path = Path(path)
    if isinstance(model, IR):
        from mnc.ir.serialize import ir_to_json

        write_text_atomic(path, ir_to_json(model))
        return path
    emit = options.pop("emit", None)
    backend = get_backend(_backend_of(model))
    backend.save(model, path, BackendOptions(emit=emit, extra=options))
    return path


def _backend_of(model: Any) -> str:
    kind = type(model)
    if kind.__name__ == "ModelProto" and kind.__module__.startswith("onnx"):
        return "onnx"
    return "torch"  # the torch backend names what it cannot save


def load(path: str | Path) -> Any:
    """Load a model written by ``mnc.save`` or ``mnc compile -o model.pt``, a training
    checkpoint (``best.pt``, ``last.pt``), or an IR written as JSON (``.json``)."""
    path = Path(path)
    if path.suffix == ".json":
        from mnc.io.textfile import read_bounded_text
        from mnc.ir.serialize import ir_from_json

        if not path.is_file():
            raise UserFileError(f"{path}: no such IR file")
        return ir_from_json(read_bounded_text(path, 256 * 1024 * 1024, "IR (JSON)"), str(path))
    return get_backend("torch").load(path)


def list_specs() -> list[str]:
    """The names of the shipped specs (``mnc specs``), the default (``mouse``) first."""
    from mnc.spec.shipped import shipped_specs

    return list(shipped_specs())
