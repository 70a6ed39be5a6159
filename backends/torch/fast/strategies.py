"""The execution strategies as registered objects: what each can run, and how it runs it.

Each ``Strategy`` has the name and one-line description of ``mnc.strategies`` (the torch-free
list the options, the training config and the CLI offer) and answers four questions:

- ``problem_for_ir(ir)``: why it cannot run this network at all (``check_strategy`` refuses);
- ``problem_for_machine()``: why it cannot run on this installation (native kernel missing);
- ``problem_for_call(dispatcher, images, training)``: why it cannot run this call (dtype,
  device, shape, training mode, autocast); a forced strategy raises it;
- ``auto_problem(...)``: why ``auto`` passes it over, which adds what ``auto`` weighs beyond
  "can run" (mask density for ``sparse``, the CPU-only measurements of ``merged``).

``auto`` walks ``AUTO_ORDER`` (sparse, merged, plain) and runs the first without a problem;
the problems of those it passed over are the lines ``mnc bench`` prints. ``forward`` and
``populations`` run a strategy through the executors its dispatcher prepared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from mnc.ir.model import IR
from mnc.strategies import DESCRIPTIONS
from mnc_backends.torch.fast import native

if TYPE_CHECKING:
    from mnc_backends.torch.fast.dispatch import Dispatcher

SPARSE_MAX_DENSITY = 0.3
"""Above this fraction of kept taps, dense convolutions beat the tap-by-tap kernel."""


def sparse_unsupported(ir: IR) -> str | None:
    """Why the sparse kernel cannot run this IR, or None when it can."""
    strided = [q.name for q in ir.projections if q.upsample != 1 and q.stride != 1]
    if strided:
        return f"projection {strided[0]!r} both upsamples and strides its source"
    return None


def feed_forward(ir: IR) -> bool:
    """Neither recurrent nor upsampled: where ``auto`` trains on the sparse batch path."""
    return not ir.is_recurrent and all(q.upsample == 1 for q in ir.projections)


def wants_autograd(training: bool) -> bool:
    """Whether a call records a graph for a backward pass (training, or gradients enabled)."""
    return training or torch.is_grad_enabled()


class Strategy:
    """One way to run a ``MouseNet``; the base runs anything, anywhere."""

    name: ClassVar[str]

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]

    def problem_for_ir(self, ir: IR) -> str | None:
        return None

    def problem_for_machine(self) -> str | None:
        return None

    def problem_for_device(self, ir: IR, device: torch.device) -> str | None:
        """Why a benchmark on ``device`` leaves this strategy out, or None."""
        return self.problem_for_machine() or self.problem_for_ir(ir)

    def problem_for_call(self, dispatcher: Dispatcher, images: Tensor, training: bool
                         ) -> str | None:
        return None

    def auto_problem(self, dispatcher: Dispatcher, images: Tensor, training: bool
                     ) -> str | None:
        return self.problem_for_call(dispatcher, images, training)

    def observed_by(self, dispatcher: Dispatcher, images: Tensor, training: bool) -> str:
        """The fast strategy that computes the activity population hooks observe."""
        return self.name

    def forward(self, dispatcher: Dispatcher, images: Tensor, training: bool) -> Tensor:
        raise NotImplementedError

    def populations(self, dispatcher: Dispatcher, images: Tensor, names: Sequence[str],
                    training: bool) -> dict[str, Tensor]:
        raise NotImplementedError


class Plain(Strategy):
    name = "plain"

    def forward(self, dispatcher: Dispatcher, images: Tensor, training: bool) -> Tensor:
        return dispatcher.model.plain_forward(images)

    def populations(self, dispatcher: Dispatcher, images: Tensor, names: Sequence[str],
                    training: bool) -> dict[str, Tensor]:
        return dict(dispatcher.model.plain_features(images, names))


class Merged(Strategy):
    name = "merged"

    def auto_problem(self, dispatcher: Dispatcher, images: Tensor, training: bool
                     ) -> str | None:
        if images.device.type != "cpu":  # elsewhere the plain path is the safe choice
            return f"it is measured on the CPU only, the input is on {images.device}"
        return None

    def forward(self, dispatcher: Dispatcher, images: Tensor, training: bool) -> Tensor:
        return dispatcher.merged.forward(dispatcher.model, images)

    def populations(self, dispatcher: Dispatcher, images: Tensor, names: Sequence[str],
                    training: bool) -> dict[str, Tensor]:
        return dispatcher.merged.populations(dispatcher.model, images, names)


class Sparse(Strategy):
    """The native kernel: one image at a time in inference (``sparse``), each population's
    drive over the batch with autograd (``sparse_train``)."""

    name = "sparse"

    def problem_for_ir(self, ir: IR) -> str | None:
        return sparse_unsupported(ir)

    def problem_for_machine(self) -> str | None:
        if native.available():
            return None
        return f"needs the native kernel, which is not available: {native.unavailable_reason()}"

    def problem_for_device(self, ir: IR, device: torch.device) -> str | None:
        if device.type != "cpu":
            return "the kernel runs on the CPU only"
        return super().problem_for_device(ir, device)

    def kernel_problem(self, dispatcher: Dispatcher, images: Tensor, training: bool
                       ) -> str | None:
        """Why the inference kernel cannot run this call, or None when it can."""
        model = dispatcher.model
        missing = None if native.available() else (
            f"native kernel unavailable ({native.unavailable_reason()})")
        learnable = "learnable masks are dense" if model.ir.mask.mode == "learnable" else None
        problem = missing or dispatcher.ir_problem(self.name)
        return (problem or _mode_problem(dispatcher, images, training)
                or _input_problem(model.ir, images) or learnable)

    def training_problem(self, dispatcher: Dispatcher, images: Tensor) -> str | None:
        """Why the batch path with autograd (``sparse_train``) cannot run this call, or None."""
        from mnc_backends.torch.fast.sparse_train import training_problem

        return training_problem(dispatcher.model, images)

    def problem_for_call(self, dispatcher: Dispatcher, images: Tensor, training: bool
                         ) -> str | None:
        problem = self.kernel_problem(dispatcher, images, training)
        if (problem is not None and dispatcher.ir_problem(self.name) is None
                and wants_autograd(training)):
            problem = self.training_problem(dispatcher, images)
        return problem

    def auto_problem(self, dispatcher: Dispatcher, images: Tensor, training: bool
                     ) -> str | None:
        problem = self.problem_for_call(dispatcher, images, training)
        if problem is not None:
            return problem
        if (not feed_forward(dispatcher.model.ir)
                and self.kernel_problem(dispatcher, images, training) is not None):
            # with autograd, the batch path is measured faster than merged only for
            # feed-forward networks (BENCHMARKS.md)
            return "with autograd, auto runs recurrent and upsampled networks with merged"
        density = dispatcher.mask_density()
        if density > SPARSE_MAX_DENSITY:
            return (f"the masks keep {density:.0%} of the taps, above the "
                    f"{SPARSE_MAX_DENSITY:.0%} where dense convolutions are faster")
        return None

    def uses_kernel(self, dispatcher: Dispatcher, images: Tensor, training: bool) -> bool:
        """Whether a ``sparse`` call runs the inference kernel (else the batch path)."""
        if not wants_autograd(training):  # (the usual inference call: the choice has
            return True                   # checked the rest)
        return self.kernel_problem(dispatcher, images, training) is None

    def observed_by(self, dispatcher: Dispatcher, images: Tensor, training: bool) -> str:
        # (the kernel's copies of a recurrent network are not per step: merged observes it)
        kernel = self.uses_kernel(dispatcher, images, training)
        return "sparse" if kernel and not dispatcher.model.recurrent else "merged"

    def forward(self, dispatcher: Dispatcher, images: Tensor, training: bool) -> Tensor:
        if self.uses_kernel(dispatcher, images, training):
            return dispatcher.sparse_executor().forward(images)
        return dispatcher.trainer_executor().forward(images)

    def populations(self, dispatcher: Dispatcher, images: Tensor, names: Sequence[str],
                    training: bool) -> dict[str, Tensor]:
        if self.uses_kernel(dispatcher, images, training):
            return dispatcher.sparse_executor().populations(images, names)
        return dispatcher.trainer_executor().populations(images, names)


def _mode_problem(dispatcher: Dispatcher, images: Tensor, training: bool) -> str | None:
    """Why the inference kernel cannot run in the module's mode: training BatchNorm, or
    gradients wanted."""
    model = dispatcher.model
    if training or any(norm.training for norm in model.norms.values()):
        return "the module is in training mode (BatchNorm uses batch statistics)"
    if torch.is_grad_enabled() and (images.requires_grad
                                    or any(p.requires_grad for p in model.parameters())):
        return "gradients are enabled (wrap the call in torch.inference_mode() or no_grad())"
    return None


def _input_problem(ir: IR, images: Tensor) -> str | None:
    """Why the inference kernel cannot take ``images``: dtype, device, autocast, shape."""
    if images.device.type != "cpu" or images.dtype != torch.float32:
        return (f"input is {images.dtype} on {images.device}, the kernel needs float32 on "
                f"cpu (auto runs merged there; strategies 'merged' and 'plain' run any "
                f"dtype)")
    if torch.is_autocast_enabled("cpu"):
        return "autocast is on (the kernel computes in float32 only)"
    inp = ir.input
    expected: tuple[int, ...] = (inp.channels, inp.height, inp.width)
    if ir.dynamics.input == "clip":
        expected = (ir.dynamics.steps, *expected)
    if images.dim() != len(expected) + 1 or tuple(images.shape[1:]) != expected:
        return f"input shape {tuple(images.shape)} is not (N, {', '.join(map(str, expected))})"
    return None


PLAIN, MERGED, SPARSE = Plain(), Merged(), Sparse()
REGISTRY: dict[str, Strategy] = {strategy.name: strategy for strategy in (PLAIN, MERGED, SPARSE)}
"""Every strategy but ``auto``, in the order of ``mnc.strategies.STRATEGIES``."""
AUTO_ORDER: tuple[Strategy, ...] = (SPARSE, MERGED, PLAIN)
"""``auto``'s preference: the first whose ``auto_problem`` is None runs (plain always can)."""
