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

The Python API mirrors the command line (``mnc compile``, ``mnc train``, ``mnc evaluate``,
``mnc specs``)::

    mnc.list_specs()                                # ['mouse', 'tiny', ...]
    ir = mnc.compile("tiny", backend="ir")          # the resolved IR
    model = mnc.compile("tiny")                     # torch.nn.Module ("onnx": a ModelProto)
    model = mnc.train(model, my_dataset, epochs=2)  # any torch Dataset/DataLoader, or "digits"
    mnc.evaluate(model, my_val_dataset)             # {"top1": ..., "top5": ..., "loss": ...}
    mnc.save(model, "model.pt"); mnc.load("model.pt")

This module is the Python composition root (as ``mnc.cli`` is the command line's): training
and evaluation are handed to the torch backend's training package on first use, so
``import mnc`` imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mnc.version import __version__

if TYPE_CHECKING:
    from mnc.ir.model import IR

__all__ = [
    "__version__",
    "compile",
    "compile_ir",
    "evaluate",
    "list_specs",
    "load",
    "save",
    "train",
]


def compile_ir(path: Any, dump_dir: Any = None) -> IR:
    """Compile a spec file to the resolved IR (see ``mnc.compiler.compile_ir``)."""
    from mnc.compiler import compile_ir as _compile_ir

    return _compile_ir(path, dump_dir)


def compile(spec: Any, backend: str = "torch", **options: Any) -> Any:
    """Compile a spec (shipped name, file or IR) with a backend: ``"ir"`` (the resolved IR),
    ``"torch"`` (a ``torch.nn.Module``) or ``"onnx"`` (see ``mnc.api.compile``)."""
    from mnc.api import compile as _compile

    return _compile(spec, backend, **options)


def load(path: Any) -> Any:
    """Load what ``mnc.save`` wrote: a model file, a training checkpoint or an IR (``.json``)."""
    from mnc.api import load as _load

    return _load(path)


def save(model: Any, path: Any, **options: Any) -> Any:
    """Save what ``mnc.compile`` or ``mnc.train`` returned (see ``mnc.api.save``)."""
    from mnc.api import save as _save

    return _save(model, path, **options)


def list_specs() -> list[str]:
    """The names of the shipped specs, the default first (``mnc specs`` lists them with sizes)."""
    from mnc.api import list_specs as _list_specs

    return _list_specs()


def train(model_or_spec: Any, train_data: Any, val_data: Any = None, *, output: Any = None,
          **config: Any) -> Any:
    """Train a network and return it trained.

    ``model_or_spec``: a spec (shipped name or file), an IR, or a network from ``mnc.compile``
    (training starts from its weights). ``train_data``: a torch ``Dataset`` or ``DataLoader``
    of ``(image, label)`` pairs, with (C, H, W) images at the network's input size (uint8
    images are normalised with ``mean``/``std``, float ones used as given), or a named data set
    (``"digits"``, a data folder) as ``mnc train --data`` takes. ``val_data``: the held-out
    set (default: a fixed ``val_fraction``, 0.2, of ``train_data``). ``config``: any
    ``mnc train`` setting by its field name (``epochs``, ``batch_size``, ``lr``, ``device``...;
    a DataLoader's batch size is used unless ``batch_size`` is given). ``output``: a run
    folder to keep (checkpoints, metrics.jsonl, as ``mnc train -o``); default a temporary one.
    """
    from mnc_backends.torch.training.python_api import train as _train

    return _train(model_or_spec, train_data, val_data, output=output, **config)


def evaluate(model: Any, data: Any, *, split: str = "val", **config: Any) -> dict[str, Any]:
    """Loss, top-1 and top-5 accuracy of a network (or a checkpoint file) on a torch
    ``Dataset``/``DataLoader`` or a named data set's ``split`` (as ``mnc evaluate``)."""
    from mnc_backends.torch.training.python_api import evaluate as _evaluate

    return _evaluate(model, data, split=split, **config)
