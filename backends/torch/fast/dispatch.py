"""Which execution strategy runs each call of a ``MouseNet``: ``model.set_strategy(...)``.

Strategies (all compute the same function as ``MouseNet.plain_forward``, within 1e-4):

- ``plain``: one masked convolution per projection, as the IR describes the network;
- ``merged``: one dense convolution per merged group (``mnc.lowering.merged``), channels-last;
  any device and dtype, trains (autograd), folds BatchNorm into cached weights in inference;
- ``sparse``: the native kernel that touches only the kept taps (CPU, float32, the compiled
  extension loaded). In inference (eval mode, no gradient, the IR's input shape) it runs one
  image at a time with BatchNorm folded in; with autograd (training, or gradients wanted) it
  runs each population's drive over the whole batch, forward and backward, and torch the
  BatchNorm, ReLU and readout (``sparse_train``);
- ``auto`` (every ``MouseNet``'s default): ``sparse`` where it applies and the masks are
  sparse (in training: feed-forward networks); otherwise ``merged`` on the CPU, where it is
  measured to be faster in inference and training; ``plain`` on other devices.

Forward hooks on population modules (``MouseNet.population_module``) that only observe run
on the fast strategies, which fire them with the activity they computed (``fast.hooks``); a
call runs ``plain`` while another hook is registered (on a convolution or a norm, a pre-hook,
a backward hook, one for every module), since only the plain path calls those submodules.
``features`` follows the same rules as ``forward``. A recurrent network (``ir.is_recurrent``)
runs unrolled in time: by ``plain``, ``merged`` (at each step, each group over its source's
activity ``delay`` steps before) or, in inference, the sparse kernel (every step of the time
schedule in one program, upsampled projections as sub-pixel phases), which ``auto`` picks
for it and for upsampled networks where it picks it for feed-forward ones (measured faster
than merged, BENCHMARKS.md "Sparse recurrent execution"); in training ``auto`` runs
``merged`` for both. Hooks on a recurrent network observe merged's activity.
What the strategies derive from the weights is held by one ``PreparedCache``. Each strategy is
an object of the registry in ``fast.strategies`` that says what it cannot run and how it runs;
the dispatcher asks it, and ``auto`` walks the registry in its order of preference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from mnc.errors import BackendError
from mnc.ir.model import IR
from mnc.strategies import AUTO, STRATEGIES
from mnc_backends.torch.fast.hooks import fire, observed_populations
from mnc_backends.torch.fast.merged import MergedExecutor
from mnc_backends.torch.fast.prepared import PreparedCache
from mnc_backends.torch.fast.shared import all_finite
from mnc_backends.torch.fast.strategies import (
    AUTO_ORDER,
    PLAIN,
    REGISTRY,
    SPARSE,
    SPARSE_MAX_DENSITY,
    sparse_unsupported,
)
from mnc_backends.torch.plan import INPUT, Activity, TorchComputation

if TYPE_CHECKING:
    from mnc_backends.torch.module import MouseNet

__all__ = ["SPARSE_MAX_DENSITY", "STRATEGIES", "Dispatcher", "check_strategy",
           "sparse_unsupported"]


def check_strategy(strategy: str, ir: IR | None = None) -> str:
    """``strategy`` if this machine can run it (on ``ir``), else a BackendError saying why."""
    if strategy not in STRATEGIES:
        raise BackendError(f"unknown execution strategy {strategy!r}; "
                           f"choose one of {', '.join(STRATEGIES)}")
    if strategy == AUTO:
        return strategy
    chosen = REGISTRY[strategy]
    reason = None if ir is None else chosen.problem_for_ir(ir)
    if ir is not None and reason is not None:
        raise BackendError(f"strategy {strategy!r} cannot run IR {ir.name!r}: {reason}; "
                           f"strategies {_and_list(_running(ir))} run it")
    missing = chosen.problem_for_machine()
    if missing is not None:
        raise BackendError(f"strategy {strategy!r} {missing}")
    return strategy


def _running(ir: IR) -> list[str]:
    """The strategies that can run ``ir``, ``auto`` first."""
    return [name for name in STRATEGIES
            if name == AUTO or REGISTRY[name].problem_for_ir(ir) is None]


def _and_list(names: list[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


class Dispatcher:
    """The executors of one ``MouseNet``, what they prepared, and the rule that picks one
    per call (the registry of ``fast.strategies``)."""

    def __init__(self, model: MouseNet) -> None:
        self.model = model
        self.cache = PreparedCache(model)
        self._ir_problems = {name: strategy.problem_for_ir(model.ir)
                             for name, strategy in REGISTRY.items()}
        self._merged = MergedExecutor(model, self.cache)
        self._sparse = None
        self._trainer = None

    @property
    def merged(self) -> MergedExecutor:
        return self._merged

    def ir_problem(self, strategy: str) -> str | None:
        """Why ``strategy`` cannot run this model's IR (found once), or None."""
        return self._ir_problems[strategy]

    def mask_density(self) -> float:
        """Fraction of taps the masks keep, prepared once per state of the weights."""
        return self.cache.get("density", self.model.mask_density)

    def sparse_problem(self, images: Tensor, training: bool) -> str | None:
        """Why the ``sparse`` inference kernel cannot run this call, or None when it can."""
        return SPARSE.kernel_problem(self, images, training)

    def sparse_training_problem(self, images: Tensor) -> str | None:
        """Why ``sparse`` cannot run this call with autograd (``sparse_train``), or None."""
        return SPARSE.training_problem(self, images)

    def choose(self, images: Tensor, strategy: str = "auto", training: bool | None = None
               ) -> str:
        """The strategy a call with ``strategy`` runs on ``images``."""
        with self.cache.call():
            return self._choose(images, strategy, training)

    def passed_over(self, images: Tensor, training: bool | None = None
                    ) -> list[tuple[str, str]]:
        """(strategy, why) for each strategy ``auto`` prefers to the one it runs on
        ``images``."""
        training = self.model.training if training is None else training
        with self.cache.call():
            plain_only = self._plain_only(images)
            if plain_only is not None:
                return [(strategy.name, plain_only) for strategy in AUTO_ORDER
                        if strategy is not PLAIN]
            return self._auto(images, training)[1]

    def _plain_only(self, images: Tensor) -> str | None:
        """Why this call runs ``plain`` whatever the strategy, or None."""
        if images.shape[0] == 0:
            return "the batch is empty (nothing to speed up)"
        if self.cache.hooks_registered() and observed_populations(self.model) is None:
            return "a hook is registered that only the plain path honours (fast.hooks)"
        return None

    def _auto(self, images: Tensor, training: bool) -> tuple[str, list[tuple[str, str]]]:
        """The first strategy of ``AUTO_ORDER`` that can run this call, and why each one
        before it cannot."""
        passed: list[tuple[str, str]] = []
        for strategy in AUTO_ORDER:
            problem = strategy.auto_problem(self, images, training)
            if problem is None:
                return strategy.name, passed
            passed.append((strategy.name, problem))
        return PLAIN.name, passed

    def _choose(self, images: Tensor, strategy: str, training: bool | None) -> str:
        if self._plain_only(images) is not None:
            return PLAIN.name
        if strategy != AUTO:
            return strategy
        return self._auto(images, self.model.training if training is None else training)[0]

    def sparse_executor(self):  # noqa: ANN201 - imported lazily with the extension
        if self._sparse is None:
            from mnc_backends.torch.fast.sparse import SparseExecutor

            self._sparse = SparseExecutor(self.model, cache=self.cache)
        return self._sparse

    def trainer_executor(self):  # noqa: ANN201 - imported lazily with the extension
        if self._trainer is None:
            from mnc_backends.torch.fast.sparse_train import SparseTrainer

            self._trainer = SparseTrainer(self.model)
        return self._trainer

    def _choose_checked(self, images: Tensor, strategy: str, training: bool) -> str:
        if strategy != AUTO:
            check_strategy(strategy, self.model.ir)  # forced on a network it cannot run
        chosen = self._choose(images, strategy, training)
        if strategy != AUTO and chosen == strategy:  # forced: say why it cannot run
            problem = REGISTRY[strategy].problem_for_call(self, images, training)
            if problem is not None:  # (auto checks in choose)
                raise BackendError(f"strategy {strategy!r} cannot run this call: {problem}")
        if chosen != PLAIN.name and not all_finite(images):
            return PLAIN.name  # NaN and infinity then spread as the plain path spreads them
        return chosen

    def _hooked(self) -> dict[str, tuple[nn.Module, ...]] | None:
        """The population hooks a fast call fires ({}: none, but a classifier hook), or None
        when no submodule has a hook (the fast paths then skip the bookkeeping)."""
        if not self.cache.hooks_registered():
            return None
        return observed_populations(self.model) or {}

    def features(self, images: Tensor, names: Sequence[str], strategy: str = "auto",
                 training: bool | None = None) -> dict[str, Tensor]:
        """Activity (after ReLU) of the populations ``names`` (checked IR names), computed by
        the strategy ``run`` would choose."""
        training = self.model.training if training is None else training
        model = self.model
        with self.cache.call():
            chosen = self._choose_checked(images, strategy, training)
            computed = [name for name in names if name != INPUT]
            if chosen == PLAIN.name or not computed:
                return model.plain_features(images, names)
            runner = REGISTRY[chosen]
            hooked = self._hooked()
            if hooked is not None:  # hooks observe the inference kernel's or merged's activity
                observed = runner.observed_by(self, images, training)
                steps = range(model.ir.dynamics.steps)
                activity = self._observed_run(observed, images, hooked, computed, steps)
                if not model.recurrent:
                    return {name: activity[(name, 0)] for name in names}
                return {name: torch.stack([activity[(name, step)] for step in steps], dim=1)
                        for name in names}
            found = runner.populations(self, images, computed, training)
        # the image itself (each step's, for a recurrent network), as plain_features gives it
        found[INPUT] = (torch.stack(model.frames(images), dim=1) if model.recurrent
                        else images)
        return {name: found[name] for name in names}

    def run(self, images: Tensor, strategy: str = "auto", training: bool | None = None
            ) -> Tensor:
        training = self.model.training if training is None else training
        model = self.model
        with self.cache.call():
            runner = REGISTRY[self._choose_checked(images, strategy, training)]
            hooked = None if runner is PLAIN else self._hooked()
            if hooked is None:
                return runner.forward(self, images, training)
            # hooks observe the inference kernel's or merged's activity
            observed = runner.observed_by(self, images, training)
            steps = model.ir.dynamics.readout_range
            activity = self._observed_run(observed, images, hooked,
                                          model.readout_populations, steps)
        return model.readout_over_steps([
            {name: activity[(name, step)] for name in model.readout_populations}
            for step in steps])

    def _observed_run(self, chosen: str, images: Tensor,
                      hooked: dict[str, tuple[nn.Module, ...]], keep: Sequence[str],
                      steps: Sequence[int]) -> dict[Activity, Tensor]:
        """The activity of every computation of the time schedule of ``keep`` at ``steps``,
        and the frames, by ``chosen``, with each population's forward hooks fired on it in the
        plain path's order (the schedule's); from a hook that replaces an activity on, the
        call continues on the plain path."""
        model = self.model
        plan = model._plan_for(keep, steps)  # noqa: SLF001
        activity = self._fast_activity(chosen, images, plan, hooked, keep)
        for index, item in enumerate(plan):
            if item.activity[0] not in hooked:
                continue
            replaced = fire(hooked[item.activity[0]], activity[item.activity])
            if replaced is not None:
                activity[item.activity] = replaced
                if chosen == "sparse":  # the kernel copied out only what was watched
                    computed = self._merged.populations(model, images, keep)
                    activity = {**{(name, 0): value for name, value in computed.items()},
                                **activity}
                for later in plan[index + 1:]:  # the plain path: its modules fire their hooks
                    activity[later.activity] = model._compute(  # noqa: SLF001
                        later, activity, images)
                break
        return activity

    def _fast_activity(self, chosen: str, images: Tensor, plan: Sequence[TorchComputation],
                       hooked: dict[str, tuple[nn.Module, ...]], keep: Sequence[str]
                       ) -> dict[Activity, Tensor]:
        """The activity ``plan`` computes (or, by the sparse kernel, what its hooks and the
        caller read), by ``chosen``, and each step's frame."""
        model = self.model
        computed = [item.activity for item in plan]
        if chosen == "sparse":  # (never recurrent)
            watched = [name for name, _ in computed if name in hooked]
            found = self.sparse_executor().populations(images, list(dict.fromkeys(
                [*watched, *keep])))
            per_step = [found]
        elif model.recurrent:
            order = list(dict.fromkeys(name for name, _ in computed))
            last = max((step for _, step in computed), default=0)
            per_step = self._merged.unrolled(model, images, order, range(last + 1))
        else:
            per_step = [self._merged.populations(model, images, keep)]
        activity = {(INPUT, step): frame for step, frame in enumerate(model.frames(images))}
        for step, found in enumerate(per_step):
            activity.update(((name, step), value) for name, value in found.items()
                            if name != INPUT)
        return activity

