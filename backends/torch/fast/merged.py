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

An upsampled group repeats its source (nearest neighbour) before the convolution; in inference
a stride-1 one instead runs over the source itself with the lowering's ``subpixel_weight``
and then ``pixel_shuffle`` (``mnc.lowering.merged.SubpixelSplit``: the same sums, about
``upsample**2`` times fewer products).

A recurrent IR (``ir.is_recurrent``) is unrolled as ``MouseNet.plain_forward`` unrolls it: at
step ``t`` each group is one convolution over its source's activity at ``t - delay``, and a
group whose step lies before step 0 is skipped (its members add nothing, not even a bias: in
inference the BatchNorm shift rides on each population's carrier, the input with the smallest
delay, present whenever any input is). A population with no input present yet rests at
``ReLU(BN(0))``, computed by its BatchNorm module as the plain path does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mnc.ir.model import IR
from mnc.lowering.merged import (
    MergedGroup,
    PhaseSplit,
    box_bias,
    box_weight,
    merged_groups,
    subpixel_bias,
    subpixel_weight,
)
from mnc_backends.torch.fast.prepared import PreparedCache
from mnc_backends.torch.fast.shared import folded_projections
from mnc_backends.torch.module import INPUT, MouseNet, build_plan, build_timed_plan
from mnc_backends.torch.names import population_key, projection_key
from mnc_backends.torch.step_norm import normalise


@dataclass(frozen=True)
class Schedule:
    """Which merged convolutions run after each population, and what each target sums."""

    groups: tuple[MergedGroup, ...]
    after: dict[str, tuple[int, ...]]
    """Population -> indices of the undelayed groups whose source it is."""
    order: tuple[str, ...]
    """Populations to compute, topological order, ``input`` excluded."""
    delayed: tuple[int, ...] = ()
    """Indices of the delayed groups: they read past steps, so they run first at a step."""


def build_schedule(ir: IR) -> Schedule:
    groups = merged_groups(ir)
    after: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        if group.delay == 0:
            after.setdefault(group.source, []).append(index)
    order = tuple(p.name for p in ir.populations if p.name != INPUT)
    delayed = tuple(index for index, group in enumerate(groups) if group.delay)
    return Schedule(groups, {name: tuple(v) for name, v in after.items()}, order, delayed)


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


def _group_conv(group: MergedGroup, x: Tensor, weight: Tensor, bias: Tensor, fold: bool,
                channels_last: bool) -> Tensor:
    """The group's convolution over its source ``x`` (before upsampling). Folded upsampled
    stride-1 weights are already in the ``subpixel_weight`` form (see ``_eval_weights``)."""
    if group.upsample != 1:
        split = group.subpixel(x.shape[-2], x.shape[-1]) if fold else None
        if split is not None:  # the taps do not depend on the grid, only the padding does
            return F.pixel_shuffle(_conv(x, weight, bias, split.padding_lrtb, 1), split.factor)
        x = x.repeat_interleave(group.upsample, dim=-2).repeat_interleave(group.upsample, dim=-1)
    # With autograd, a stride-2 convolution runs as a stride-1 one over the phase
    # images (measured 1.25x per training step; inference gains nothing)
    phases = None if fold else group.phase_split(x.shape[-2], x.shape[-1])
    if phases is None:
        return _conv(x, weight, bias, group.padding_lrtb, group.stride)
    split_weight = phase_split_weight(weight, phases)
    if channels_last:
        split_weight = split_weight.contiguous(memory_format=torch.channels_last)
    return _conv(F.pixel_unshuffle(x, 2), split_weight, bias, phases.padding_lrtb, 1)


class MergedExecutor:
    """Runs a ``MouseNet``'s computation with merged convolutions (shares its parameters)."""

    def __init__(self, model: MouseNet, cache: PreparedCache | None = None,
                 channels_last: bool = True) -> None:
        self.schedule = build_schedule(model.ir)
        self.channels_last = channels_last
        self.cache = PreparedCache(model) if cache is None else cache
        self._needed: dict[frozenset[str], frozenset[str]] = {}

    def _eval_weights(self, model: MouseNet, device: torch.device, dtype: torch.dtype,
                      step: int = 0) -> list[tuple[Tensor, Tensor]]:
        """The folded group weights with the BatchNorm statistics of ``step`` (a recurrent
        network's differ per step)."""
        def build() -> list[tuple[Tensor, Tensor]]:
            key = "folded" if step == 0 else ("folded", step)  # step 0's is the sparse one's
            folded = self.cache.get(key, lambda: folded_projections(model, step))
            weights = {name: projection.weight for name, projection in folded.items()}
            biases = {name: projection.bias for name, projection in folded.items()}
            boxes = []
            for group in self.schedule.groups:
                box, bias = box_weight(group, weights), box_bias(group, biases)
                source = model.ir.population(group.source)
                split = group.subpixel(source.height, source.width)
                if split is not None:
                    box, bias = subpixel_weight(box, split), subpixel_bias(bias, split)
                weight = torch.from_numpy(box).to(device, dtype)
                if self.channels_last:
                    weight = weight.contiguous(memory_format=torch.channels_last)
                boxes.append((weight, torch.from_numpy(bias).to(device, dtype)))
            return boxes

        return self.cache.get(("merged", device, dtype, self.channels_last, step), build)

    def _foldable(self, model: MouseNet) -> bool:
        return all(not norm.training and norm.running_mean is not None
                   for norm in model.norms.values())

    def _weights(self, model: MouseNet, images: Tensor, steps: int = 1
                 ) -> tuple[bool, list[list[tuple[Tensor, Tensor]]]]:
        """(folded, per step each group's weight and bias) for a call on ``images``; unfolded
        weights serve every step."""
        fold = self._foldable(model) and not (torch.is_grad_enabled() and any(
            p.requires_grad for p in model.parameters()))
        if fold:
            return fold, [self._eval_weights(model, images.device, images.dtype, step)
                          for step in range(steps)]
        weights = [merged_weight(model, group) for group in self.schedule.groups]
        return fold, [weights] * steps

    def _launch(self, index: int, x: Tensor, weights: Sequence[tuple[Tensor, Tensor]],
                fold: bool, partial: dict[str, Tensor]) -> None:
        """Run group ``index`` over its source's activity ``x``; add each member's part into
        its target's drive."""
        group = self.schedule.groups[index]
        weight, bias = weights[index]
        out = _group_conv(group, x, weight, bias, fold, self.channels_last)
        height, width = group.input_size(x.shape[-2], x.shape[-1])
        for member in group.members:
            rows, columns = member.output_size(height, width, group.stride)
            part = out[:, member.channel_start:member.channel_start + member.out_channels,
                       :rows, :columns]
            previous = partial.get(member.target)
            partial[member.target] = part if previous is None else previous + part

    def _activity(self, model: MouseNet, name: str, drive: Tensor, fold: bool,
                  step: int | None = None) -> Tensor:
        """ReLU of the drive (BatchNorm folded in), else of its BatchNorm (of ``step`` in a
        recurrent network)."""
        if fold:
            return F.relu(drive)
        # BatchNorm in training mode over a contiguous (NCHW) drive: torch's channels-last CPU
        # kernel sums the batch statistics and their gradients in plain float32 runs, which
        # cost merged about 4x the plain path's gradient error against a float64 truth
        norm = model.norms[population_key(name)]
        drive = drive.contiguous()
        return F.relu(normalise(norm, drive, step))

    def populations(self, model: MouseNet, images: Tensor,
                    keep: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Activity (after ReLU) of every population, by IR name; with ``keep``, of those
        populations and the ancestors computing them needs (no other BatchNorm runs).
        A recurrent network's: ``(N, T, C, H, W)``, every step."""
        if model.recurrent:
            names = list(model.ir.population_names() if keep is None else keep)
            computed = [name for name in names if name != INPUT]
            per_step = self.unrolled(model, images, computed, range(model.ir.dynamics.steps))
            return {name: torch.stack([activity[name] for activity in per_step], dim=1)
                    for name in computed}
        needed = None if keep is None else {step.population for step in build_plan(model.ir, keep)}
        fold, [weights] = self._weights(model, images)
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        activity: dict[str, Tensor] = {INPUT: images}
        partial: dict[str, Tensor] = {}

        def launch(source: str) -> None:
            for index in self.schedule.after.get(source, ()):
                self._launch(index, activity[source], weights, fold, partial)

        launch(INPUT)
        for name in self.schedule.order:
            if needed is not None and name not in needed:
                continue
            activity[name] = self._activity(model, name, partial.pop(name), fold)
            launch(name)
        return activity

    def unrolled(self, model: MouseNet, images: Tensor, keep: Sequence[str], steps: range
                 ) -> list[dict[str, Tensor]]:
        """A recurrent network run over its steps (``MouseNet.frames``): the activity of the
        populations ``keep`` (computed ones) at each of ``steps``."""
        key = frozenset(keep)
        needed = self._needed.get(key)
        if needed is None:
            needed = frozenset(step.population for step in build_timed_plan(model.ir, keep))
            self._needed[key] = needed
        fold, per_step = self._weights(model, images, model.ir.dynamics.steps)
        groups = self.schedule.groups
        delayed = [index for index in self.schedule.delayed if groups[index].source in needed
                   or groups[index].source == INPUT]
        memory = max((groups[index].delay for index in delayed), default=0)
        past: list[Mapping[str, Tensor]] = []  # past[d - 1]: the activity d steps ago
        kept = []
        for index, frame in enumerate(model.frames(images)):
            weights = per_step[index]
            if self.channels_last:
                frame = frame.contiguous(memory_format=torch.channels_last)
            activity: dict[str, Tensor] = {INPUT: frame}
            partial: dict[str, Tensor] = {}
            for group in delayed:
                delay = groups[group].delay
                if delay <= len(past):  # else its source's step lies before step 0: absent
                    self._launch(group, past[delay - 1][groups[group].source], weights, fold,
                                 partial)
            for group in self.schedule.after.get(INPUT, ()):
                self._launch(group, frame, weights, fold, partial)
            for name in self.schedule.order:
                if name not in needed:
                    continue
                drive = partial.pop(name, None)
                if drive is None:  # only delayed inputs, none present yet: it rests
                    channels, height, width = _shape(model.ir, name)
                    drive = frame.new_zeros(frame.shape[0], channels, height, width)
                    activity[name] = F.relu(model.norms[population_key(name)](drive, index))
                else:
                    activity[name] = self._activity(model, name, drive, fold, index)
                for group in self.schedule.after.get(name, ()):
                    self._launch(group, activity[name], weights, fold, partial)
            if index in steps:
                kept.append({name: activity[name] for name in keep})
            if memory:
                past = [activity, *past[:memory - 1]]
        return kept

    def forward(self, model: MouseNet, images: Tensor) -> Tensor:
        if model.recurrent:
            return model.readout_over_steps(self.unrolled(
                model, images, model.readout_populations, model.ir.dynamics.readout_range))
        return model.readout(self.populations(model, images))


def _shape(ir: IR, name: str) -> tuple[int, int, int]:
    population = ir.population(name)
    return population.channels, population.height, population.width
