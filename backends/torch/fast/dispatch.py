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
What the strategies derive from the weights is held by one ``PreparedCache``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mnc.errors import BackendError
from mnc.ir.model import IR
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.hooks import fire, observed_populations
from mnc_backends.torch.fast.merged import MergedExecutor
from mnc_backends.torch.fast.prepared import PreparedCache
from mnc_backends.torch.fast.shared import all_finite
from mnc_backends.torch.module import INPUT, MouseNet

STRATEGIES = ("auto", "plain", "merged", "sparse")
SPARSE_MAX_DENSITY = 0.3
"""Above this fraction of kept taps, dense convolutions beat the tap-by-tap kernel."""


def sparse_unsupported(ir: IR) -> str | None:
    """Why the sparse kernel cannot run this IR, or None when it can."""
    strided = [q.name for q in ir.projections if q.upsample != 1 and q.stride != 1]
    if strided:
        return f"projection {strided[0]!r} both upsamples and strides its source"
    return None


def _feed_forward(ir: IR) -> bool:
    """Neither recurrent nor upsampled: where ``auto`` trains on the sparse batch path."""
    return not ir.is_recurrent and all(q.upsample == 1 for q in ir.projections)


def check_strategy(strategy: str, ir: IR | None = None) -> str:
    """``strategy`` if this machine can run it (on ``ir``), else a BackendError saying why."""
    if strategy not in STRATEGIES:
        raise BackendError(f"unknown execution strategy {strategy!r}; "
                           f"choose one of {', '.join(STRATEGIES)}")
    if strategy == "sparse" and ir is not None:
        reason = sparse_unsupported(ir)
        if reason is not None:
            raise BackendError(f"strategy 'sparse' cannot run IR {ir.name!r}: {reason}; "
                               f"strategies 'auto', 'plain' and 'merged' run it")
    if strategy == "sparse" and not native.available():
        raise BackendError(f"strategy 'sparse' needs the native kernel, which is not "
                           f"available: {native.unavailable_reason()}")
    return strategy


class Dispatcher:
    """The executors of one ``MouseNet``, what they prepared, and the rule that picks one
    per call."""

    def __init__(self, model: MouseNet) -> None:
        self.model = model
        self.cache = PreparedCache(model)
        self._sparse_unsupported = sparse_unsupported(model.ir)
        self._merged = MergedExecutor(model, self.cache)
        self._sparse = None
        self._trainer = None

    def mask_density(self) -> float:
        """Fraction of taps the masks keep, prepared once per state of the weights."""
        return self.cache.get("density", self.model.mask_density)

    def sparse_problem(self, images: Tensor, training: bool) -> str | None:
        """Why ``sparse`` cannot run this call, or None when it can."""
        model = self.model
        inp = model.ir.input
        if not native.available():
            return f"native kernel unavailable ({native.unavailable_reason()})"
        if self._sparse_unsupported is not None:
            return self._sparse_unsupported
        if training or any(norm.training for norm in model.norms.values()):
            return "the module is in training mode (BatchNorm uses batch statistics)"
        if torch.is_grad_enabled() and (images.requires_grad
                                        or any(p.requires_grad for p in model.parameters())):
            return "gradients are enabled (wrap the call in torch.inference_mode() or no_grad())"
        if images.device.type != "cpu" or images.dtype != torch.float32:
            return (f"input is {images.dtype} on {images.device}, the kernel needs float32 on "
                    f"cpu (auto runs merged there; strategies 'merged' and 'plain' run any "
                    f"dtype)")
        if torch.is_autocast_enabled("cpu"):
            return "autocast is on (the kernel computes in float32 only)"
        expected: tuple[int, ...] = (inp.channels, inp.height, inp.width)
        if model.ir.dynamics.input == "clip":
            expected = (model.ir.dynamics.steps, *expected)
        if images.dim() != len(expected) + 1 or tuple(images.shape[1:]) != expected:
            return (f"input shape {tuple(images.shape)} is not (N, "
                    f"{', '.join(map(str, expected))})")
        if model.ir.mask.mode == "learnable":
            return "learnable masks are dense"
        return None

    def sparse_training_problem(self, images: Tensor) -> str | None:
        """Why ``sparse`` cannot run this call with autograd (``sparse_train``), or None."""
        from mnc_backends.torch.fast.sparse_train import training_problem

        return training_problem(self.model, images)

    def choose(self, images: Tensor, strategy: str = "auto", training: bool | None = None
               ) -> str:
        """The strategy a call with ``strategy`` runs on ``images``."""
        with self.cache.call():
            return self._choose(images, strategy, training)

    def _choose(self, images: Tensor, strategy: str, training: bool | None) -> str:
        if images.shape[0] == 0:
            return "plain"  # (an empty batch: nothing to speed up)
        if self.cache.hooks_registered() and observed_populations(self.model) is None:
            return "plain"  # a hook only the plain path honours (fast.hooks)
        if strategy != "auto":
            return strategy
        training = self.model.training if training is None else training
        if (self.sparse_problem(images, training) is None
                and self.mask_density() <= SPARSE_MAX_DENSITY):
            return "sparse"
        # with autograd: the batch path over the kept taps, measured faster than merged for
        # feed-forward networks (BENCHMARKS.md)
        if (_feed_forward(self.model.ir) and (training or torch.is_grad_enabled())
                and self.sparse_training_problem(images) is None
                and self.mask_density() <= SPARSE_MAX_DENSITY):
            return "sparse"
        # merged is measured on the CPU only; elsewhere the plain path is the safe choice
        return "merged" if images.device.type == "cpu" else "plain"

    def _sparse_executor(self):  # noqa: ANN202 - imported lazily with the extension
        if self._sparse is None:
            from mnc_backends.torch.fast.sparse import SparseExecutor

            self._sparse = SparseExecutor(self.model, cache=self.cache)
        return self._sparse

    def _trainer_executor(self):  # noqa: ANN202 - imported lazily with the extension
        if self._trainer is None:
            from mnc_backends.torch.fast.sparse_train import SparseTrainer

            self._trainer = SparseTrainer(self.model)
        return self._trainer

    def _sparse_kernel(self, images: Tensor, training: bool) -> bool:
        """Whether a ``sparse`` call runs the inference kernel (else the batch path)."""
        if not training and not torch.is_grad_enabled():  # (the usual inference call: the
            return True                                   # choice has checked the rest)
        return self.sparse_problem(images, training) is None

    def _choose_checked(self, images: Tensor, strategy: str, training: bool) -> str:
        if strategy != "auto":
            check_strategy(strategy, self.model.ir)  # forced on a network it cannot run
        chosen = self._choose(images, strategy, training)
        if strategy == "sparse" and chosen == "sparse":  # forced: say why it cannot run
            problem = self.sparse_problem(images, training)  # (auto checks in choose)
            wants_autograd = training or torch.is_grad_enabled()
            if problem is not None and wants_autograd:
                problem = self.sparse_training_problem(images)
            if problem is not None:
                raise BackendError(f"strategy 'sparse' cannot run this call: {problem}")
        if chosen != "plain" and not all_finite(images):
            return "plain"  # NaN and infinity then spread exactly as the plain path spreads them
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
        with self.cache.call():
            chosen = self._choose_checked(images, strategy, training)
            computed = [name for name in names if name != INPUT]
            if chosen == "plain" or not computed:
                return self.model.plain_features(images, names)
            kernel = chosen == "sparse" and self._sparse_kernel(images, training)
            hooked = self._hooked()
            if hooked is not None:  # hooks observe the inference kernel's or merged's activity
                observed = "sparse" if kernel and not self.model.recurrent else "merged"
                per_step = self._observed_run(observed, images, hooked, computed)
                return self._stacked(images, per_step, names)
            if kernel:
                activity = self._sparse_executor().populations(images, computed)
            elif chosen == "sparse":
                activity = self._trainer_executor().populations(images, computed)
            else:
                activity = self._merged.populations(self.model, images, computed)
        # the image itself (each step's, for a recurrent network), as plain_features gives it
        activity[INPUT] = (torch.stack(self.model.frames(images), dim=1) if self.model.recurrent
                           else images)
        return {name: activity[name] for name in names}

    def run(self, images: Tensor, strategy: str = "auto", training: bool | None = None
            ) -> Tensor:
        training = self.model.training if training is None else training
        model = self.model
        with self.cache.call():
            chosen = self._choose_checked(images, strategy, training)
            kernel = chosen == "sparse" and self._sparse_kernel(images, training)
            if chosen != "plain":
                hooked = self._hooked()
                if hooked is not None:  # hooks observe the inference kernel's or merged's
                    keep = model.readout_populations
                    observed = "sparse" if kernel and not model.recurrent else "merged"
                    per_step = self._observed_run(observed, images, hooked, keep)
                    if not model.recurrent:
                        return model.readout(per_step[0])
                    steps = model.ir.dynamics.readout_range
                    return model.readout_over_steps([per_step[step] for step in steps])
            if kernel:
                return self._sparse_executor().forward(images)
            if chosen == "sparse":
                return self._trainer_executor().forward(images)
            if chosen == "merged":
                return self._merged.forward(model, images)
        return model.plain_forward(images)

    def _stacked(self, images: Tensor, per_step: list[dict[str, Tensor]], names: Sequence[str]
                 ) -> dict[str, Tensor]:
        """``features``' result from the activity at each step."""
        if not self.model.recurrent:
            return {name: images if name == INPUT else per_step[0][name] for name in names}
        return {name: torch.stack([activity[name] for activity in per_step], dim=1)
                for name in names}

    def _observed_run(self, chosen: str, images: Tensor,
                      hooked: dict[str, tuple[nn.Module, ...]], keep: Sequence[str]
                      ) -> list[dict[str, Tensor]]:
        """Every step's activity of ``keep`` and the ancestors computing it, by ``chosen``,
        with each population's forward hooks fired on it in the plain path's order; from a
        hook that replaces an activity on, the call continues on the plain path."""
        model = self.model
        order = [step.population for step in model._timed_plan(keep)]  # noqa: SLF001
        watched = [name for name in order if name in hooked]
        if chosen == "sparse":  # (feed-forward only: hooks on a recurrent one observe merged)
            copies = list(dict.fromkeys([*watched, *keep]))
            per_step = [self._sparse_executor().populations(images, copies)]
        elif model.recurrent:
            per_step = self._merged.unrolled(model, images, order,
                                             range(model.ir.dynamics.steps))
        else:
            per_step = [self._merged.populations(model, images, keep)]
        for activity, frame in zip(per_step, model.frames(images), strict=True):
            activity[INPUT] = frame
        for step, activity in enumerate(per_step):
            for index, name in enumerate(order):
                if name not in hooked:
                    continue
                replaced = fire(hooked[name], activity[name])
                if replaced is not None:
                    activity[name] = replaced
                    if chosen == "sparse":  # the kernel copied out only what was watched
                        computed = self._merged.populations(model, images, keep)
                        per_step[0] = activity = {**computed, **activity}
                    self._continue_plain(images, per_step, step, index, keep)
                    return per_step
        return per_step

    def _continue_plain(self, images: Tensor, per_step: list[dict[str, Tensor]], step: int,
                        index: int, keep: Sequence[str]) -> None:
        """Recompute, on the plain path (its modules fire their own hooks), every population
        after position ``index`` of the plan at ``step`` and all of every later step."""
        model = self.model
        plan = model._timed_plan(keep)  # noqa: SLF001
        memory = max((delay for item in plan for _, _, delay in item.inputs), default=0)
        frames = model.frames(images)
        for now in range(step, len(frames)):
            activity = per_step[now] if now == step else {INPUT: frames[now]}
            past = [per_step[now - 1 - back] for back in range(min(now, memory))]
            for item in plan[index + 1 if now == step else 0:]:
                activity[item.population] = model._timed_population(  # noqa: SLF001
                    item, activity, past, now)
            per_step[now] = activity
