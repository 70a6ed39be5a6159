"""The ``merged`` strategy: one dense convolution per (source, stride), channels-last.

Portable (any device, any dtype) and differentiable: the merged weight is built from each
member's ``effective_weight()`` (``weight * mask``) with ``F.pad`` and ``torch.cat`` on every
training call, so gradients reach the raw weights through the mask and masked taps keep a zero
gradient. Fewer, wider convolutions use the CPU far better than 49 thin ones (3 to 42 channels).

In inference (module in eval mode and no gradient needed) the merged weights are built once
and cached until a parameter or buffer changes (tracked with tensor version counters), with
each target's BatchNorm folded in: ``scale = gamma / sqrt(var + eps)`` multiplies the
member's rows and bias, and ``beta - mean * scale`` is added to the first member's bias.

With autograd, a stride-2 convolution over an even grid runs as a stride-1 convolution over
``pixel_unshuffle(x, 2)`` with the kernel rearranged by ``phase_split_weight``: the same sums,
and oneDNN's backward pass is much faster for it (1.25x per training step of the default spec).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnc.analysis.grouping import PhaseSplit, SourceGroup, group_projections
from mnc.ir.model import IR
from mnc_backends.torch.module import INPUT, MouseNet, build_plan
from mnc_backends.torch.names import population_key, projection_key


@dataclass(frozen=True)
class Schedule:
    """Which merged convolutions run after each population, and what each target sums."""

    groups: tuple[SourceGroup, ...]
    after: dict[str, tuple[int, ...]]
    """Population -> indices of the groups whose source it is."""
    order: tuple[str, ...]
    """Populations to compute, topological order, ``input`` excluded."""


def build_schedule(ir: IR) -> Schedule:
    groups = group_projections(ir)
    after: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        after.setdefault(group.source, []).append(index)
    order = tuple(p.name for p in ir.populations if p.name != INPUT)
    return Schedule(groups, {name: tuple(v) for name, v in after.items()}, order)


def merged_weight(model: MouseNet, group: SourceGroup) -> tuple[Tensor, Tensor]:
    """(weight, bias) of a merged convolution, differentiable w.r.t. the members' parameters."""
    weights, biases = [], []
    for member in group.members:
        source, target = member.name.split("->", 1)
        conv = model.convs[projection_key(source, target)]
        k = member.kernel_size
        weights.append(F.pad(conv.effective_weight(),
                             (member.offset_x, group.kernel_width - k - member.offset_x,
                              member.offset_y, group.kernel_height - k - member.offset_y)))
        biases.append(conv.bias)
    weight = weights[0] if len(weights) == 1 else torch.cat(weights, dim=0)
    bias = biases[0] if len(biases) == 1 else torch.cat(biases, dim=0)
    return weight, bias


def phase_split_weight(weight: Tensor, split: PhaseSplit) -> Tensor:
    """The kernel of ``split`` (see ``mnc.analysis.grouping.PhaseSplit``) for input channels
    in ``pixel_unshuffle`` order (``c * 4 + py * 2 + px``); differentiable."""
    out_channels, channels, height, width = weight.shape
    rows, columns = 2 * split.kernel_height, 2 * split.kernel_width
    padded = F.pad(weight, (split.front_x, columns - width - split.front_x,
                            split.front_y, rows - height - split.front_y))
    phases = padded.view(out_channels, channels, split.kernel_height, 2, split.kernel_width, 2)
    return phases.permute(0, 1, 3, 5, 2, 4).reshape(
        out_channels, channels * 4, split.kernel_height, split.kernel_width)


def _conv(x: Tensor, weight: Tensor, bias: Tensor, padding_lrtb: tuple[int, int, int, int],
          stride: int) -> Tensor:
    left, right, top, bottom = padding_lrtb
    if left == right and top == bottom:
        return F.conv2d(x, weight, bias, stride, (top, left))
    return F.conv2d(F.pad(x, padding_lrtb), weight, bias, stride)


def bn_fold(norm: torch.nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(scale, shift) with ``bn(x) == x * scale + shift`` in eval mode."""
    mean, var = norm.running_mean, norm.running_var
    assert mean is not None and var is not None  # eval-mode BatchNorm uses the running stats
    scale = norm.weight / torch.sqrt(var + norm.eps)
    return scale, norm.bias - mean * scale


class StateWatch:
    """Tells cheaply whether any parameter or buffer of a model changed since the last look.

    The key holds every tensor's version counter (bumped by in-place updates) and identity
    (changed when a parameter is replaced), and the identity of every submodule (changed when
    one is swapped, as ``convert_sync_batchnorm`` does). The places are listed once, so a call
    costs one pass over them rather than a walk of the module tree; the listing is redone when
    a submodule changes.
    """

    def __init__(self, model: nn.Module) -> None:
        self._model = model
        self._list()

    def _list(self) -> None:
        modules = list(self._model.modules())
        self._children = [module._modules for module in modules]  # noqa: SLF001
        self._slots = [(table, name) for module in modules
                       for table in (module._parameters, module._buffers)  # noqa: SLF001
                       for name in table]
        self._structure = self._shape()

    def _shape(self) -> tuple[int, ...]:
        return tuple(id(child) for table in self._children for child in table.values())

    def key(self) -> tuple[int, ...] | None:
        """None when a tensor has no counter (created under ``torch.inference_mode``): then
        nothing derived from the weights may be cached."""
        structure = self._shape()
        if structure != self._structure:
            self._list()
        tensors = [table[name] for table, name in self._slots]
        try:
            versions = tuple(-1 if t is None else t._version for t in tensors)
        except RuntimeError:  # an inference tensor: it has no version counter
            return None
        return structure + versions + tuple(map(id, tensors))


class MergedExecutor:
    """Runs a ``MouseNet``'s computation with merged convolutions (shares its parameters)."""

    def __init__(self, model: MouseNet, channels_last: bool = True) -> None:
        self.schedule = build_schedule(model.ir)
        self.channels_last = channels_last
        self._folded: list[tuple[Tensor, Tensor]] | None = None
        self._folded_key: tuple | None = None
        self._watch = StateWatch(model)

    def _eval_weights(self, model: MouseNet, device: torch.device, dtype: torch.dtype
                      ) -> list[tuple[Tensor, Tensor]]:
        versions = self._watch.key()
        key = (versions, device, dtype)
        if versions is not None and self._folded is not None and self._folded_key == key:
            return self._folded
        folded = []
        first_member: set[str] = set()
        with torch.no_grad():
            for group in self.schedule.groups:
                weight, bias = merged_weight(model, group)
                weight, bias = weight.clone(), bias.clone()
                for member in group.members:
                    scale, shift = bn_fold(model.norms[population_key(member.target)])
                    rows = slice(member.channel_start, member.channel_start + member.out_channels)
                    weight[rows] *= scale[:, None, None, None]
                    bias[rows] *= scale
                    if member.target not in first_member:
                        first_member.add(member.target)
                        bias[rows] += shift
                if self.channels_last:
                    weight = weight.contiguous(memory_format=torch.channels_last)
                folded.append((weight.to(device, dtype), bias.to(device, dtype)))
        self._folded, self._folded_key = folded, key
        return folded

    def _foldable(self, model: MouseNet) -> bool:
        return all(not norm.training and norm.running_mean is not None
                   for norm in model.norms.values())

    def populations(self, model: MouseNet, images: Tensor,
                    keep: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Activity (after ReLU) of every population, by IR name; with ``keep``, of those
        populations and the ancestors computing them needs (no other BatchNorm runs)."""
        needed = None if keep is None else {step.population for step in build_plan(model.ir, keep)}
        fold = self._foldable(model) and not (torch.is_grad_enabled() and any(
            p.requires_grad for p in model.parameters()))
        weights = (self._eval_weights(model, images.device, images.dtype) if fold
                   else [merged_weight(model, group) for group in self.schedule.groups])
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        activity: dict[str, Tensor] = {INPUT: images}
        partial: dict[str, Tensor] = {}

        def launch(source: str) -> None:
            for index in self.schedule.after.get(source, ()):
                group = self.schedule.groups[index]
                weight, bias = weights[index]
                x = activity[source]
                # With autograd, a stride-2 convolution runs as a stride-1 one over the phase
                # images (measured 1.25x per training step; inference gains nothing)
                split = None if fold else group.phase_split(x.shape[-2], x.shape[-1])
                if split is None:
                    out = _conv(x, weight, bias, group.padding_lrtb, group.stride)
                else:
                    split_weight = phase_split_weight(weight, split)
                    if self.channels_last:
                        split_weight = split_weight.contiguous(memory_format=torch.channels_last)
                    out = _conv(F.pixel_unshuffle(x, 2), split_weight, bias, split.padding_lrtb, 1)
                for member in group.members:
                    height, width = member.output_size(x.shape[-2], x.shape[-1], group.stride)
                    part = out[:, member.channel_start:member.channel_start + member.out_channels,
                               :height, :width]
                    previous = partial.get(member.target)
                    partial[member.target] = part if previous is None else previous + part

        launch(INPUT)
        for name in self.schedule.order:
            if needed is not None and name not in needed:
                continue
            drive = partial.pop(name)
            if fold:
                activity[name] = F.relu(drive)
            else:
                activity[name] = F.relu(model.norms[population_key(name)](drive))
            launch(name)
        return activity

    def forward(self, model: MouseNet, images: Tensor) -> Tensor:
        return model.readout(self.populations(model, images))
