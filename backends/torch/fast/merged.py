"""The ``merged`` strategy: one dense convolution per merged group, channels-last.

Which projections merge, and where each member's kernel sits in the group's box, is
``mnc.lowering.merged``. Fewer, wider convolutions use the CPU far better than 49 thin ones
(3 to 42 channels).

Inference (module in eval mode and no gradient needed): the box weights and biases are the
lowering's numpy ones (``box_weight``, ``box_bias``) over the BatchNorm-folded projections
(``mnc.lowering.batchnorm.fold_projections``), held by the model's ``PreparedCache`` per
device and dtype until the weights change; each population is then the ReLU of its drive.

With autograd (training, or gradients wanted) the box is filled in torch on every call from
each member's ``effective_weight()`` (``weight * mask``) with ``F.pad`` and ``torch.cat``, so
gradients reach the raw weights through the mask and masked taps keep a zero gradient, and
the BatchNorm modules run. A stride-2 convolution over an even grid then runs as a stride-1
convolution over ``pixel_unshuffle(x, 2)`` with the kernel rearranged by
``phase_split_weight``: the same sums, and oneDNN's backward pass is much faster for it
(1.25x per training step of the default spec).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mnc.ir.model import IR
from mnc.lowering.merged import MergedGroup, PhaseSplit, box_bias, box_weight, merged_groups
from mnc_backends.torch.fast.prepared import PreparedCache
from mnc_backends.torch.fast.shared import folded_projections
from mnc_backends.torch.module import INPUT, MouseNet, build_plan
from mnc_backends.torch.names import population_key, projection_key


@dataclass(frozen=True)
class Schedule:
    """Which merged convolutions run after each population, and what each target sums."""

    groups: tuple[MergedGroup, ...]
    after: dict[str, tuple[int, ...]]
    """Population -> indices of the groups whose source it is."""
    order: tuple[str, ...]
    """Populations to compute, topological order, ``input`` excluded."""


def build_schedule(ir: IR) -> Schedule:
    groups = merged_groups(ir)
    after: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        after.setdefault(group.source, []).append(index)
    order = tuple(p.name for p in ir.populations if p.name != INPUT)
    return Schedule(groups, {name: tuple(v) for name, v in after.items()}, order)


def merged_weight(model: MouseNet, group: MergedGroup) -> tuple[Tensor, Tensor]:
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
    """The kernel of ``split`` (see ``mnc.lowering.merged.PhaseSplit``) for input channels
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


class MergedExecutor:
    """Runs a ``MouseNet``'s computation with merged convolutions (shares its parameters)."""

    def __init__(self, model: MouseNet, cache: PreparedCache | None = None,
                 channels_last: bool = True) -> None:
        self.schedule = build_schedule(model.ir)
        self.channels_last = channels_last
        self.cache = PreparedCache(model) if cache is None else cache

    def _eval_weights(self, model: MouseNet, device: torch.device, dtype: torch.dtype
                      ) -> list[tuple[Tensor, Tensor]]:
        def build() -> list[tuple[Tensor, Tensor]]:
            folded = self.cache.get("folded", lambda: folded_projections(model))
            weights = {name: projection.weight for name, projection in folded.items()}
            biases = {name: projection.bias for name, projection in folded.items()}
            boxes = []
            for group in self.schedule.groups:
                weight = torch.from_numpy(box_weight(group, weights)).to(device, dtype)
                if self.channels_last:
                    weight = weight.contiguous(memory_format=torch.channels_last)
                boxes.append((weight, torch.from_numpy(box_bias(group, biases)).to(device, dtype)))
            return boxes

        return self.cache.get(("merged", device, dtype, self.channels_last), build)

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
