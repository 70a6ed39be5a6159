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

Every call walks the IR's time schedule (``mnc.lowering.schedule``), a feed-forward network
being its one-step case: at step ``t`` each group is one convolution over its source's
activity at ``t - delay``, launched when some member's target computes at ``t`` (delayed
groups and the frame's first, then each group right after its source); a group whose source
step lies before step 0 is skipped (its members add nothing, not even a bias: in inference the
BatchNorm shift rides on each population's carrier, the input with the smallest delay, present
whenever any input is). A population with no input present yet rests at ``ReLU(BN(0))``,
computed by its BatchNorm module as the plain path does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from mnc.lowering.schedule import Computation, Schedule, time_schedule
from mnc_backends.torch.fast.prepared import PreparedCache
from mnc_backends.torch.fast.shared import folded_projections
from mnc_backends.torch.names import population_key, projection_key
from mnc_backends.torch.plan import INPUT, Activity
from mnc_backends.torch.step_norm import normalise

if TYPE_CHECKING:
    from mnc_backends.torch.module import MouseNet


@dataclass(frozen=True)
class GroupTable:
    """The merged groups, and which run after each population."""

    groups: tuple[MergedGroup, ...]
    after: dict[str, tuple[int, ...]]
    """Population -> indices of the undelayed groups whose source it is."""
    delayed: tuple[int, ...] = ()
    """Indices of the delayed groups: they read past steps, so they run first at a step."""


def group_table(ir: IR) -> GroupTable:
    groups = merged_groups(ir)
    after: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        if group.delay == 0:
            after.setdefault(group.source, []).append(index)
    delayed = tuple(index for index, group in enumerate(groups) if group.delay)
    return GroupTable(groups, {name: tuple(v) for name, v in after.items()}, delayed)


@dataclass(frozen=True)
class Launch:
    """Run a group over one activity of its source."""

    group: int
    source: Activity


@dataclass(frozen=True)
class MergedStep:
    """A step of the schedule as merged convolutions: the groups over the past and the
    frame, then each computation with the groups its activity feeds at once."""

    step: int
    opening: tuple[Launch, ...]
    computations: tuple[tuple[Computation, tuple[Launch, ...]], ...]


def merged_plan(table: GroupTable, schedule: Schedule) -> tuple[MergedStep, ...]:
    """``schedule`` with the launches of ``table``'s groups: a group runs at a step when one
    of its members' targets computes then (and its source step is not before step 0)."""
    plan = []
    for step in sorted({item.step for item in schedule.computations}):
        items = schedule.at(step)
        targets = {item.population for item in items}
        opening = (_launches(table, table.delayed, step, targets)
                   + _launches(table, table.after.get(INPUT, ()), step, targets))
        plan.append(MergedStep(step, opening, tuple(
            (item, _launches(table, table.after.get(item.population, ()), step, targets))
            for item in items)))
    return tuple(plan)


def _launches(table: GroupTable, indices: Sequence[int], step: int, targets: set[str]
              ) -> tuple[Launch, ...]:
    """The groups among ``indices`` that feed one of ``targets`` at ``step``."""
    launches = []
    for index in indices:
        group = table.groups[index]
        if group.delay <= step and any(member.target in targets for member in group.members):
            launches.append(Launch(index, (group.source, step - group.delay)))
    return tuple(launches)


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
        self.table = group_table(model.ir)
        self.channels_last = channels_last
        self.cache = PreparedCache(model) if cache is None else cache
        self._plans: dict[tuple[frozenset[str], tuple[int, ...]], tuple[MergedStep, ...]] = {}
        self._computing: dict[frozenset[str], list[str]] = {}

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
            for group in self.table.groups:
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
        weights = [merged_weight(model, group) for group in self.table.groups]
        return fold, [weights] * steps

    def _launch(self, index: int, x: Tensor, weights: Sequence[tuple[Tensor, Tensor]],
                fold: bool, partial: dict[str, Tensor]) -> None:
        """Run group ``index`` over its source's activity ``x``; add each member's part into
        its target's drive."""
        group = self.table.groups[index]
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

    def _plan(self, model: MouseNet, keep: Sequence[str], steps: Sequence[int]
              ) -> tuple[MergedStep, ...]:
        key = (frozenset(keep), tuple(steps))
        plan = self._plans.get(key)
        if plan is None:
            schedule = time_schedule(model.ir, list(keep), list(steps))
            plan = self._plans.setdefault(key, merged_plan(self.table, schedule))
        return plan

    def _frames(self, model: MouseNet, images: Tensor) -> list[Tensor]:
        frames = model.frames(images) if model.recurrent else [images]
        if not self.channels_last:
            return frames
        return [frame.contiguous(memory_format=torch.channels_last) if frame.dim() == 4
                else frame for frame in frames]

    def _compute(self, model: MouseNet, item: Computation, drive: Tensor | None, fold: bool,
                 frame: Tensor) -> Tensor:
        if drive is not None:
            return self._activity(model, item.population, drive, fold, item.step)
        # only delayed inputs, none present yet: the population rests at ReLU(BN(0))
        channels, height, width = _shape(model.ir, item.population)
        drive = frame.new_zeros(frame.shape[0], channels, height, width)
        return F.relu(normalise(model.norms[population_key(item.population)], drive,
                                item.step))

    def _run(self, model: MouseNet, images: Tensor, plan: Sequence[MergedStep]
             ) -> dict[Activity, Tensor]:
        """Walk ``plan``; the activities no computation released (the caller's)."""
        fold, per_step = self._weights(model, images, model.ir.dynamics.steps)
        frames = self._frames(model, images)
        activity = {(INPUT, step): frame for step, frame in enumerate(frames)}
        for stage in plan:
            weights = per_step[stage.step]
            partial: dict[str, Tensor] = {}
            for launch in stage.opening:
                self._launch(launch.group, activity[launch.source], weights, fold, partial)
            for item, launches in stage.computations:
                activity[(item.population, item.step)] = self._compute(
                    model, item, partial.pop(item.population, None), fold, frames[item.step])
                for launch in launches:
                    self._launch(launch.group, activity[launch.source], weights, fold, partial)
                for done in item.release:
                    del activity[done]
        return activity

    def unrolled(self, model: MouseNet, images: Tensor, keep: Sequence[str],
                 steps: Sequence[int]) -> list[dict[str, Tensor]]:
        """The activity of the populations ``keep`` at each of ``steps`` (a feed-forward
        network has the one step 0)."""
        activity = self._run(model, images, self._plan(model, keep, steps))
        return [{name: activity[(name, step)] for name in keep} for step in steps]

    def populations(self, model: MouseNet, images: Tensor,
                    keep: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Activity (after ReLU) of every population, by IR name; with ``keep``, of those
        populations and (feed-forward) the ancestors computing them needs (no other
        BatchNorm runs). A recurrent network's: ``(N, T, C, H, W)``, every step."""
        names = list(model.ir.population_names() if keep is None else keep)
        if not model.recurrent:  # the ancestors come back too: hooks observe them
            return self.unrolled(model, images, self._ancestors(model.ir, names), [0])[0]
        computed = [name for name in names if name != INPUT]
        steps = range(model.ir.dynamics.steps)
        per_step = self.unrolled(model, images, computed, steps)
        return {name: torch.stack([activity[name] for activity in per_step], dim=1)
                for name in computed}

    def _ancestors(self, ir: IR, names: Sequence[str]) -> list[str]:
        """The frame and the populations the one-step schedule of ``names`` computes."""
        key = frozenset(names)
        found = self._computing.get(key)
        if found is None:
            schedule = time_schedule(ir, list(names), [0])
            found = [INPUT, *(item.population for item in schedule.computations)]
            found = self._computing.setdefault(key, found)
        return found

    def forward(self, model: MouseNet, images: Tensor) -> Tensor:
        return model.readout_over_steps(self.unrolled(
            model, images, model.readout_populations, model.ir.dynamics.readout_range))


def _shape(ir: IR, name: str) -> tuple[int, int, int]:
    population = ir.population(name)
    return population.channels, population.height, population.width
