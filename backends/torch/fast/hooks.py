"""Forward hooks on population modules, fired by the fast strategies.

Activation extractors (neural-benchmark wrappers, hand-written ones) register forward hooks on
``populations.<key>`` (or its ``.relu``) and read the ``output`` they are handed. The fast
strategies never call those modules, so the dispatcher calls their hooks itself, with the
activity the strategy computed, in the order the plain path fires them: the time schedule's
(``mnc.lowering.schedule``; populations in the IR's order, for a recurrent network step by
step, each population at the steps the call needs it).

What the fast path cannot honour sends the call to the plain path: a hook on a convolution,
a BatchNorm or any other module; a forward pre-hook or a backward hook; a hook registered for
every module; a module in training mode. Classifier forward hooks fire by themselves (every
strategy calls the classifier module), except the bare sparse forward, which is then not used.

A hook that returns a value replaces the population's activity. That is seen only when it
returns, so the dispatcher then continues the call on the plain path from that population on
(``Dispatcher``): hooks already called are not called again, and everything downstream sees
the replaced activity.

A hook's ``args`` on the fast path is a ``MissingDrive``: the drive before the ReLU is never
computed there (the sparse kernel writes the activity only), and reading it raises a
BackendError that says so, instead of handing over a wrong tensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from mnc.errors import BackendError
from mnc_backends.torch.population import Population

_OTHER_TABLES = ("_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_TABLES = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)


class MissingDrive(tuple):
    """The ``args`` of a population hook fired by a fast strategy: empty, and indexing it
    explains why."""

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:  # noqa: ANN401 - tuple's signature
        raise BackendError(
            "this forward hook reads its module's input (the drive before the ReLU), which "
            "the fast strategies do not compute; read `output` (the activity), or run "
            "model.set_strategy('plain') to be handed the drive"
        )


NO_DRIVE = MissingDrive()


def observed_populations(model: nn.Module) -> dict[str, tuple[nn.Module, ...]] | None:
    """Population name -> the modules whose forward hooks it must fire (its ReLU, then
    itself), for every population with one; None when some hook needs the plain path."""
    import torch.nn.modules.module as shared

    if model.training or any(getattr(shared, table, None) for table in _GLOBAL_TABLES):
        return None
    hooked: dict[str, tuple[nn.Module, ...]] = {}
    for name, module in model.named_modules():
        if module is model:
            continue
        if module.training or any(getattr(module, table) for table in _OTHER_TABLES):
            return None  # batch statistics, input hooks, gradients: only plain honours them
        if not module._forward_hooks or isinstance(module, nn.ModuleDict):
            continue  # (a ModuleDict is never called: its hooks never fire)
        if name == "classifier":
            continue  # the hook paths call the classifier module
        population = _population_of(model, name, module)
        if population is None:
            return None  # a convolution, a norm, anything else: only plain calls them
        owner = model.get_submodule(".".join(name.split(".")[:2]))
        hooked[population] = _chain(owner)
    return hooked


def _population_of(model: nn.Module, name: str, module: nn.Module) -> str | None:
    parts = name.split(".")
    if parts[0] != "populations" or len(parts) not in (2, 3):
        return None
    owner = model.get_submodule(f"populations.{parts[1]}")
    if not isinstance(owner, Population):
        return None
    if len(parts) == 3 and module is not getattr(owner, "relu", None):
        return None
    return owner.population


def _chain(owner: nn.Module) -> tuple[nn.Module, ...]:
    """The modules a population's call runs hooks on, in the order they fire."""
    relu = getattr(owner, "relu", None)
    return tuple(module for module in (relu, owner) if module is not None and module._forward_hooks)


def fire(modules: tuple[nn.Module, ...], activity: Tensor) -> Tensor | None:
    """Call the forward hooks of ``modules`` on ``activity`` as ``nn.Module.__call__`` would
    (a hook's return value, when not None, is what later hooks see); the final output if a
    hook replaced it, else None."""
    result, replaced = activity, False
    for module in modules:
        with_kwargs: Mapping[int, Any] = module._forward_hooks_with_kwargs
        for hook_id, hook in list(module._forward_hooks.items()):
            returned = (
                hook(module, NO_DRIVE, {}, result)
                if hook_id in with_kwargs
                else hook(module, NO_DRIVE, result)
            )
            if returned is not None:
                result, replaced = returned, True
    return result if replaced else None
