"""Per-step and readout-averaged activity of a recurrent network, read through forward hooks.

A population's module (``model.population_module(name)``) is called once per step it
computes at, so a forward hook on it fires up to ``steps`` times per call, in step order, and a
hook-based tool that keeps only the last call sees the last step. (Calls follow the time
schedule, ``mnc.lowering.schedule``: ``features`` computes the named populations at every
step; ``forward`` computes what the readout needs, up to the last readout step, which for the
shipped specs is every population at every step.) ``StepActivity`` collects every call
instead::

    with StepActivity(model, ["VISp2/3", "VISl5"]) as recorded:
        logits = model(images)
    recorded.stacked["VISp2/3"]    # (N, T, C, H, W): every step, as model.features gives
    recorded.readout["VISp2/3"]    # (N, C, H, W): the mean over ir.dynamics.readout_range,
                                   # the steps `mnc rsa --step readout` compares

While the hooks are registered the model runs its plain strategy (as with any hook). A
feed-forward model gives ``T = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mnc.errors import BackendError
from mnc_backends.torch.module import MouseNet


class StepActivity:
    """Context manager: records each named population's activity at every step of the calls
    made inside it (the last complete call is kept)."""

    def __init__(self, model: MouseNet, populations: Sequence[str]) -> None:
        self.model = model
        self.names = model.population_names(populations)
        self._calls: dict[str, list[Tensor]] = {name: [] for name in self.names}
        self._handles: list[Any] = []

    def __enter__(self) -> StepActivity:
        for name in self.names:
            module = self.model.population_module(name)
            self._handles.append(module.register_forward_hook(self._recorder(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _recorder(self, name: str) -> Any:
        steps = self.model.ir.dynamics.steps

        def record(module: Any, inputs: Any, output: Tensor) -> None:
            calls = self._calls[name]
            if len(calls) == steps:  # a new call of the model begins: keep only the last
                calls.clear()
            calls.append(output.detach())

        return record

    def _steps(self, name: str) -> list[Tensor]:
        calls = self._calls[name]
        steps = self.model.ir.dynamics.steps
        if len(calls) != steps:
            raise BackendError(
                f"{name!r} was recorded at {len(calls)} of {steps} steps: run "
                "the model on a whole input inside the `with` block (forward "
                "computes only the readout populations' ancestors)"
            )
        return calls

    @property
    def stacked(self) -> dict[str, Tensor]:
        """Every recorded population's activity at each step, ``(N, T, C, H, W)``."""
        return {name: torch.stack(self._steps(name), dim=1) for name in self.names}

    @property
    def readout(self) -> dict[str, Tensor]:
        """The activity averaged over the readout steps, ``(N, C, H, W)``."""
        readout = self.model.ir.dynamics.readout_range
        return {
            name: torch.stack([self._steps(name)[step] for step in readout]).mean(dim=0)
            for name in self.names
        }
