"""Pick the fastest execution strategy that applies to each call, or the one the user forces.

Strategies (all compute the same function as ``MouseNet``, within 1e-4):

- ``plain``: the module's own forward (one masked convolution per projection);
- ``merged``: one dense convolution per (source, stride), channels-last; any device and dtype,
  trains (autograd), folds BatchNorm into cached weights in inference;
- ``sparse``: the native kernel that touches only the kept taps; inference only (eval mode,
  no gradient), CPU, float32, the IR's input shape, and the compiled extension loaded;
- ``auto`` (default): ``sparse`` where it applies and the masks are sparse, else ``merged``.

``FastMouseNet`` shares the wrapped model's layers (``convs``, ``norms``, ``classifier``), so
its ``state_dict`` has exactly the weights contract's names and an optimizer built on either
module trains both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mnc.errors import BackendError
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.merged import MergedExecutor
from mnc_backends.torch.module import MouseNet

STRATEGIES = ("auto", "plain", "merged", "sparse")
SPARSE_MAX_DENSITY = 0.3
"""Above this fraction of kept taps, dense convolutions beat the tap-by-tap kernel."""


class FastMouseNet(nn.Module):
    """A ``MouseNet`` whose forward runs the chosen (or automatically picked) strategy."""

    def __init__(self, model: MouseNet, strategy: str = "auto") -> None:
        super().__init__()
        if not isinstance(model, MouseNet):
            raise BackendError(f"accelerate: expected a MouseNet, got {type(model).__name__}")
        self.convs = model.convs
        self.norms = model.norms
        self.classifier = model.classifier
        self.__dict__["base"] = model  # not a submodule, so state-dict names stay the contract's
        self.ir = model.ir
        self._merged = MergedExecutor(model)
        self._sparse = None
        self._density: float | None = None
        self.strategy = "auto"
        self.set_strategy(strategy)
        self.train(model.training)

    base: MouseNet

    def set_strategy(self, strategy: str) -> FastMouseNet:
        """Force a strategy (``auto``, ``plain``, ``merged``, ``sparse``); returns self."""
        if strategy not in STRATEGIES:
            raise BackendError(f"unknown execution strategy {strategy!r}; "
                               f"choose one of {', '.join(STRATEGIES)}")
        if strategy == "sparse" and not native.available():
            raise BackendError(f"strategy 'sparse' needs the native kernel, which is not "
                               f"available: {native.unavailable_reason()}")
        self.strategy = strategy
        return self

    def train(self, mode: bool = True) -> FastMouseNet:
        super().train(mode)
        self.base.train(mode)
        return self

    @property
    def content_hash(self) -> str:
        return self.base.content_hash

    def mask_density(self) -> float:
        if self._density is None:
            self._density = self.base.mask_density()
        return self._density

    def sparse_problem(self, images: Tensor) -> str | None:
        """Why ``sparse`` cannot run this call, or None when it can."""
        inp = self.ir.input
        if not native.available():
            return f"native kernel unavailable ({native.unavailable_reason()})"
        if self.training or any(norm.training for norm in self.norms.values()):
            return "the module is in training mode (BatchNorm uses batch statistics)"
        if torch.is_grad_enabled() and (images.requires_grad
                                        or any(p.requires_grad for p in self.parameters())):
            return "gradients are enabled (wrap the call in torch.inference_mode() or no_grad())"
        if images.device.type != "cpu" or images.dtype != torch.float32:
            return f"input is {images.dtype} on {images.device}, the kernel needs float32 on cpu"
        if images.dim() != 4 or tuple(images.shape[1:]) != (inp.channels, inp.height, inp.width):
            return (f"input shape {tuple(images.shape)} is not (N, {inp.channels}, "
                    f"{inp.height}, {inp.width})")
        if self.ir.mask.mode == "learnable":
            return "learnable masks are dense"
        return None

    def choose(self, images: Tensor) -> str:
        """The strategy this call runs."""
        if self.strategy != "auto":
            return self.strategy
        if self.sparse_problem(images) is None and self.mask_density() <= SPARSE_MAX_DENSITY:
            return "sparse"
        return "merged"

    def _sparse_executor(self):  # noqa: ANN202 - imported lazily with the extension
        if self._sparse is None:
            from mnc_backends.torch.fast.sparse import SparseExecutor

            self._sparse = SparseExecutor(self.base)
        return self._sparse

    def forward(self, images: Tensor) -> Tensor:
        strategy = self.choose(images)
        if strategy == "sparse":
            problem = self.sparse_problem(images)
            if problem is not None:
                raise BackendError(f"strategy 'sparse' cannot run this call: {problem}")
            return self._sparse_executor().forward(images)
        if strategy == "merged":
            return self._merged.forward(self.base, images)
        return self.base(images)

    def features(self, images: Tensor, populations: Sequence[str] | None = None
                 ) -> dict[str, Tensor]:
        """Population activity, as ``MouseNet.features`` (plain strategy)."""
        return self.base.features(images, populations)


def accelerate(model: MouseNet, strategy: str = "auto") -> FastMouseNet:
    """Wrap a compiled ``MouseNet`` so each call runs the fastest strategy that applies."""
    return FastMouseNet(model, strategy)
