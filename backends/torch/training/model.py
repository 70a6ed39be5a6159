"""Build the network for training through the public API, and load weights into it."""

from __future__ import annotations

import hashlib

import torch

from mnc.errors import BackendError
from mnc.ir.model import IR
from mnc.lowering.weights_format import ir_from_payload as ir_of
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.weights_io import load_state_dict

__all__ = ["build_model", "fingerprint", "ir_of", "load_state", "network_input", "unwrap"]


def build_model(ir: IR, strategy: str = "auto") -> torch.nn.Module:
    """``compile_spec(ir, backend="torch")``: the same module every other command gets, with
    the execution strategy ``strategy``."""
    from mnc.api import compile as compile_spec

    model = compile_spec(ir, backend="torch", strategy=strategy)
    if not isinstance(model, torch.nn.Module):
        raise BackendError(f"the torch backend returned {type(model).__name__}, not a Module")
    return model


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Strict, checked load into the network inside any DDP or torch.compile wrapper."""
    inner = unwrap(model)
    if not isinstance(inner, MouseNet):
        raise BackendError(f"{origin}: weights load into an mnc network, not a "
                           f"{type(inner).__name__}")
    load_state_dict(inner, state, origin)


def network_input(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """A batch of still images (N, C, H, W) as ``model`` takes it.

    Training and evaluation data are still images. A recurrent network with ``still`` input
    shows the image at every step itself; one whose input is a clip gets the image as each of
    its frames, (N, T, C, H, W) (a view, no copy).
    """
    ir = getattr(unwrap(model), "ir", None)
    if not isinstance(ir, IR) or ir.dynamics.input != "clip":
        return images
    return images.unsqueeze(1).expand(-1, ir.dynamics.steps, *images.shape[1:])


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer: equal on all DDP ranks when they agree."""
    digest = hashlib.sha256()
    for key, tensor in sorted(unwrap(model).state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel and torch.compile (its state-dict keys lack
    ``module.`` and ``_orig_mod.``)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model
