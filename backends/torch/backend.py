"""The ``torch`` backend: IR -> ``MouseNet`` module, saved as a self-describing ``.pt`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from mnc.analysis.limits import check_memory
from mnc.analysis.recurrence import describe_recurrence
from mnc.backend import Backend, BackendOptions, read_options
from mnc.errors import BackendError
from mnc.io.atomic import write_text_atomic
from mnc.ir.model import IR
from mnc.strategies import StrategyName
from mnc_backends.torch.emit_python import emit_python
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.weights_io import load_model, load_weights, save_model


class TorchOptions(BaseModel):
    """Options of the torch backend (``BackendOptions.extra``, flags of ``mnc compile``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    device: str | None = Field(default=None, max_length=64)
    """torch device to move the model to, e.g. cuda or cuda:1 (default: cpu)"""
    strategy: StrategyName = "auto"
    """execution strategy: auto picks the fastest that applies on each call"""


class TorchBackend(Backend):
    name: ClassVar[str] = "torch"
    description: ClassVar[str] = "PyTorch nn.Module (masked convolutions), saved as .pt"
    suffix: ClassVar[str] = ".pt"
    emits: ClassVar[tuple[str, ...]] = ("python",)
    options_model: ClassVar[type[BaseModel]] = TorchOptions

    def compile(self, ir: IR, options: BackendOptions) -> nn.Module:
        """Build the network; ``options.weights`` fills it from a saved model or checkpoint.

        ``options.outputs`` is checked against the IR; read those populations with
        ``model.features(images, populations)``. ``TorchOptions`` (``extra``): ``device``
        moves the model; ``strategy`` sets the execution strategy: ``auto`` (the default: each
        call runs the fastest strategy that applies), ``plain``, ``merged`` or ``sparse``
        (``mnc_backends.torch.fast``).
        """
        settings = read_options(TorchOptions, options, self.name)
        known = set(ir.population_names())
        for name in options.outputs:
            if name not in known:
                raise BackendError(f"torch backend: output {name!r} is not a population of "
                                   f"IR {ir.name!r}; known: {', '.join(ir.population_names())}")
        check_memory(ir, "build")  # also for an IR handed over directly, not from a spec
        model = MouseNet(ir)
        if options.weights is not None:
            load_weights(model, options.weights)
        device = settings.device
        if device is not None:
            try:
                model = model.to(torch.device(device))
            except (RuntimeError, AssertionError) as error:
                raise BackendError(f"torch backend: cannot use device {device!r}: "
                                   f"{error}") from None
        return model.set_strategy(settings.strategy)

    def save(self, artifact: Any, path: Path, options: BackendOptions) -> None:
        """Write the model file (IR, hash, masks, weights), or Python source with emit="python"."""
        artifact = getattr(artifact, "base", artifact)  # an accelerated model saves its network
        if not isinstance(artifact, MouseNet):
            raise BackendError(f"torch backend: can only save a MouseNet, not "
                               f"{type(artifact).__name__}")
        if options.emit is None:
            save_model(artifact, path)
        elif options.emit == "python":
            write_text_atomic(path, emit_python(artifact.ir))
        else:
            raise BackendError(f"torch backend: cannot emit {options.emit!r}; "
                               f"supported: {', '.join(self.emits)}")

    def describe(self, artifact: Any) -> str:
        artifact = getattr(artifact, "base", artifact)
        if not isinstance(artifact, MouseNet):
            return type(artifact).__name__
        ir = artifact.ir
        parameters = sum(p.numel() for p in artifact.parameters())
        return (f"MouseNet {ir.name!r} (IR {ir.short_hash}): {len(ir.populations)} populations, "
                f"{len(ir.projections)} projections, {parameters / 1e6:.2f} M parameters, "
                f"mask mode {ir.mask.mode} (seed {ir.mask.seed}), "
                f"{100 * artifact.mask_density():.1f} % of taps kept; "
                f"input {ir.input.channels}x{ir.input.height}x{ir.input.width} -> "
                f"{ir.readout.classes} classes"
                + (f"; {describe_recurrence(ir)}" if ir.is_recurrent else ""))

    def load(self, path: Path) -> MouseNet:
        """Rebuild a model from a file written by ``save`` or a training checkpoint."""
        return load_model(path, MouseNet)
