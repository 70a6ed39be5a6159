"""Deprecated: ``accelerate(model, strategy)`` and ``FastMouseNet``, a view of a model with a
strategy of its own. A ``MouseNet`` runs its own strategy: ``model.set_strategy(strategy)``
(see ``mnc_backends.torch.fast.dispatch``). The view still works, through the model's one
dispatcher, and warns once per construction.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from torch import Tensor, nn

from mnc.errors import BackendError
from mnc_backends.torch.fast.dispatch import STRATEGIES, check_strategy
from mnc_backends.torch.module import MouseNet

__all__ = ["STRATEGIES", "FastMouseNet", "accelerate"]
DEPRECATION = ("{name} is deprecated: call model.set_strategy({strategy!r}) on the MouseNet "
               "itself (it returns the model)")


class FastMouseNet(nn.Module):
    """Deprecated: a ``MouseNet`` seen through an execution strategy of its own; use
    ``MouseNet.set_strategy``. Shares the model's layers, so its ``state_dict`` has the
    weights contract's names and an optimizer built on either module trains both."""

    def __init__(self, model: MouseNet, strategy: str = "auto") -> None:
        warnings.warn(DEPRECATION.format(name=type(self).__name__, strategy=strategy),
                      DeprecationWarning, stacklevel=2)
        super().__init__()
        if not isinstance(model, MouseNet):
            raise BackendError(f"accelerate: expected a MouseNet, got {type(model).__name__}")
        self.convs = model.convs
        self.norms = model.norms
        self.populations = model.populations
        self.classifier = model.classifier
        self.__dict__["base"] = model  # not a submodule, so state-dict names stay the contract's
        self.ir = model.ir
        self.strategy = check_strategy(strategy, model.ir)
        self.train(model.training)

    base: MouseNet

    def set_strategy(self, strategy: str) -> FastMouseNet:
        self.strategy = check_strategy(strategy, self.ir)
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
        return self.base.dispatcher().sparse_problem(images, self.training)

    def choose(self, images: Tensor) -> str:
        return self.base.dispatcher().choose(images, self.strategy, self.training)

    def forward(self, images: Tensor) -> Tensor:
        return self.base.dispatcher().run(images, self.strategy, self.training)

    def features(self, images: Tensor, populations: Sequence[str] | None = None
                 ) -> dict[str, Tensor]:
        names = self.base.population_names(populations)
        return self.base.dispatcher().features(images, names, self.strategy, self.training)


def accelerate(model: MouseNet, strategy: str = "auto") -> FastMouseNet:
    """Deprecated: use ``model.set_strategy(strategy)``."""
    warnings.warn(DEPRECATION.format(name="accelerate()", strategy=strategy),
                  DeprecationWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return FastMouseNet(model, strategy)
