"""Pick the fastest execution strategy that applies to each call, or the one the user forces.

Strategies (all compute the same function as ``MouseNet.plain_forward``, within 1e-4):

- ``plain``: one masked convolution per projection, as the IR describes the network;
- ``merged``: one dense convolution per (source, stride), channels-last; any device and dtype,
  trains (autograd), folds BatchNorm into cached weights in inference;
- ``sparse``: the native kernel that touches only the kept taps; inference only (eval mode,
  no gradient), CPU, float32, the IR's input shape, and the compiled extension loaded;
- ``auto`` (every ``MouseNet``'s default): ``sparse`` where it applies and the masks are
  sparse; otherwise ``merged`` on the CPU, where it is measured to be faster in inference and
  training; ``plain`` on other devices.

Whatever the strategy, a call runs ``plain`` while any submodule (or every module, globally)
has a forward or backward hook: only the plain path calls the submodules, so only it fires
their hooks (``MouseNet.population_module``). ``features`` follows the same rules as
``forward``.

A ``MouseNet`` runs its own ``strategy`` (``model.set_strategy(...)``); ``FastMouseNet`` is a
view of a model with a strategy of its own, sharing its layers (``convs``, ``norms``,
``classifier``), so its ``state_dict`` has exactly the weights contract's names and an
optimizer built on either module trains both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mnc.errors import BackendError
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.finite import all_finite
from mnc_backends.torch.fast.merged import MergedExecutor
from mnc_backends.torch.module import INPUT, MouseNet

STRATEGIES = ("auto", "plain", "merged", "sparse")
SPARSE_MAX_DENSITY = 0.3
"""Above this fraction of kept taps, dense convolutions beat the tap-by-tap kernel."""


def check_strategy(strategy: str) -> str:
    """``strategy`` if it is one this machine can run, else a BackendError saying why."""
    if strategy not in STRATEGIES:
        raise BackendError(f"unknown execution strategy {strategy!r}; "
                           f"choose one of {', '.join(STRATEGIES)}")
    if strategy == "sparse" and not native.available():
        raise BackendError(f"strategy 'sparse' needs the native kernel, which is not "
                           f"available: {native.unavailable_reason()}")
    return strategy


_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOK_TABLES = tuple(f"_global{table}" for table in _HOOK_TABLES)


class HookWatch:
    """Tells whether a submodule of a model has a forward or backward hook, or one is
    registered for every module (``torch.nn.modules.module.register_module_forward_hook`` and
    alike). torch signals no hook being added, so every call looks at the hook tables (dicts
    that registering a hook fills in place), listed once and again when a submodule is
    swapped: tens of microseconds for the default spec. The model's own hooks are left out:
    its ``__call__`` runs them whatever the strategy."""

    def __init__(self, model: nn.Module) -> None:
        self._model = model
        self._list()

    def _list(self) -> None:
        modules = list(self._model.modules())
        self._children = [module._modules for module in modules]  # noqa: SLF001
        self._structure = self._shape()
        self._tables = [getattr(module, table) for module in modules[1:]
                        for table in _HOOK_TABLES]

    def _shape(self) -> tuple[int, ...]:
        return tuple(id(child) for table in self._children for child in table.values())

    def registered(self) -> bool:
        shared = torch.nn.modules.module
        if any(getattr(shared, table, None) for table in _GLOBAL_HOOK_TABLES):
            return True
        if self._shape() != self._structure:
            self._list()
        return any(self._tables)


class Dispatcher:
    """The executors of one ``MouseNet`` and the rule that picks one per call."""

    def __init__(self, model: MouseNet) -> None:
        self.model = model
        self._merged = MergedExecutor(model)
        self._hooks = HookWatch(model)
        self._sparse = None
        self._density: float | None = None

    def mask_density(self) -> float:
        if self._density is None:
            self._density = self.model.mask_density()
        return self._density

    def sparse_problem(self, images: Tensor, training: bool) -> str | None:
        """Why ``sparse`` cannot run this call, or None when it can."""
        model = self.model
        inp = model.ir.input
        if not native.available():
            return f"native kernel unavailable ({native.unavailable_reason()})"
        if training or any(norm.training for norm in model.norms.values()):
            return "the module is in training mode (BatchNorm uses batch statistics)"
        if torch.is_grad_enabled() and (images.requires_grad
                                        or any(p.requires_grad for p in model.parameters())):
            return "gradients are enabled (wrap the call in torch.inference_mode() or no_grad())"
        if images.device.type != "cpu" or images.dtype != torch.float32:
            return f"input is {images.dtype} on {images.device}, the kernel needs float32 on cpu"
        if torch.is_autocast_enabled("cpu"):
            return "autocast is on (the kernel computes in float32 only)"
        if images.dim() != 4 or tuple(images.shape[1:]) != (inp.channels, inp.height, inp.width):
            return (f"input shape {tuple(images.shape)} is not (N, {inp.channels}, "
                    f"{inp.height}, {inp.width})")
        if model.ir.mask.mode == "learnable":
            return "learnable masks are dense"
        return None

    def choose(self, images: Tensor, strategy: str = "auto", training: bool | None = None
               ) -> str:
        """The strategy a call with ``strategy`` runs on ``images``."""
        if self._hooks.registered() or images.shape[0] == 0:  # an empty batch: nothing to speed
            return "plain"
        if strategy != "auto":
            return strategy
        training = self.model.training if training is None else training
        if (self.sparse_problem(images, training) is None
                and self.mask_density() <= SPARSE_MAX_DENSITY):
            return "sparse"
        # merged is measured on the CPU only; elsewhere the plain path is the safe choice
        return "merged" if images.device.type == "cpu" else "plain"

    def _sparse_executor(self):  # noqa: ANN202 - imported lazily with the extension
        if self._sparse is None:
            from mnc_backends.torch.fast.sparse import SparseExecutor

            self._sparse = SparseExecutor(self.model)
        return self._sparse

    def _choose_checked(self, images: Tensor, strategy: str, training: bool) -> str:
        chosen = self.choose(images, strategy, training)
        if strategy == "sparse" and chosen == "sparse":  # forced: say why it cannot run
            problem = self.sparse_problem(images, training)  # (auto checks in choose)
            if problem is not None:
                raise BackendError(f"strategy 'sparse' cannot run this call: {problem}")
        if chosen != "plain" and not all_finite(images):
            return "plain"  # NaN and infinity then spread exactly as the plain path spreads them
        return chosen

    def features(self, images: Tensor, names: Sequence[str], strategy: str = "auto",
                 training: bool | None = None) -> dict[str, Tensor]:
        """Activity (after ReLU) of the populations ``names`` (checked IR names), computed by
        the strategy ``run`` would choose."""
        training = self.model.training if training is None else training
        chosen = self._choose_checked(images, strategy, training)
        computed = [name for name in names if name != INPUT]
        if chosen == "plain" or not computed:
            return self.model.plain_features(images, names)
        if chosen == "sparse":
            activity = self._sparse_executor().populations(images, computed)
        else:
            activity = self._merged.populations(self.model, images, computed)
        activity[INPUT] = images  # the image itself, as plain_features gives it
        return {name: activity[name] for name in names}

    def run(self, images: Tensor, strategy: str = "auto", training: bool | None = None
            ) -> Tensor:
        training = self.model.training if training is None else training
        chosen = self._choose_checked(images, strategy, training)
        if chosen == "sparse":
            return self._sparse_executor().forward(images)
        if chosen == "merged":
            return self._merged.forward(self.model, images)
        return self.model.plain_forward(images)


class FastMouseNet(nn.Module):
    """A ``MouseNet`` seen through an execution strategy of its own (or ``auto``)."""

    def __init__(self, model: MouseNet, strategy: str = "auto") -> None:
        super().__init__()
        if not isinstance(model, MouseNet):
            raise BackendError(f"accelerate: expected a MouseNet, got {type(model).__name__}")
        self.convs = model.convs
        self.norms = model.norms
        self.populations = model.populations
        self.classifier = model.classifier
        self.__dict__["base"] = model  # not a submodule, so state-dict names stay the contract's
        self.ir = model.ir
        self.strategy = check_strategy(strategy)
        self.train(model.training)

    base: MouseNet

    def set_strategy(self, strategy: str) -> FastMouseNet:
        """Force a strategy (``auto``, ``plain``, ``merged``, ``sparse``); returns self."""
        self.strategy = check_strategy(strategy)
        return self

    def train(self, mode: bool = True) -> FastMouseNet:
        super().train(mode)
        self.base.train(mode)
        return self

    @property
    def content_hash(self) -> str:
        return self.base.content_hash

    def mask_density(self) -> float:
        return self.base.dispatcher().mask_density()

    def sparse_problem(self, images: Tensor) -> str | None:
        """Why ``sparse`` cannot run this call, or None when it can."""
        return self.base.dispatcher().sparse_problem(images, self.training)

    def choose(self, images: Tensor) -> str:
        """The strategy this call runs."""
        return self.base.dispatcher().choose(images, self.strategy, self.training)

    def forward(self, images: Tensor) -> Tensor:
        return self.base.dispatcher().run(images, self.strategy, self.training)

    def features(self, images: Tensor, populations: Sequence[str] | None = None
                 ) -> dict[str, Tensor]:
        """Population activity, as ``MouseNet.features``, by this view's strategy."""
        names = self.base.population_names(populations)
        return self.base.dispatcher().features(images, names, self.strategy, self.training)


def accelerate(model: MouseNet, strategy: str = "auto") -> FastMouseNet:
    """A view of a compiled ``MouseNet`` whose calls run ``strategy`` (default: ``auto``)."""
    return FastMouseNet(model, strategy)
