"""The ``sparse`` strategy with autograd: training over the kept taps only.

The inference kernel (``sparse``) folds BatchNorm into its weights and runs one image at a
time; training needs each BatchNorm's batch statistics, so here the native kernel computes
one population's drive for the whole batch, torch runs BatchNorm (train or eval mode), ReLU,
the readout and the classifier, and the native kernel computes the backward pass of the
drive: the input gradient (the same tap sums over the output gradient, taps transposed) and
the gradient of every kept weight. Masked weights take no part: their gradient is exactly
zero (the kept weights are gathered from ``weight * mask`` by index, and autograd scatters
their gradient back into a zero tensor).

Layout: a source read by projections of one stride ``s`` (and upsampling) is padded once by
the widest padding among them, to a multiple of ``s``, and split into its ``s * s`` phase
images (``pixel_unshuffle``) in torch, so autograd carries the gradient back through the
padding and the split; every tap is then a stride-1 read at a fixed offset into that tensor
(``TapList``). Every call walks the IR's time schedule (``mnc.lowering.schedule``) as
``MouseNet.plain_forward`` does: a feed-forward network is its one-step case, a recurrent one
reads each delayed source ``delay`` steps back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mnc.errors import BackendError
from mnc.ir.model import IR
from mnc.lowering.schedule import Schedule, time_schedule
from mnc_backends.torch.fast import native
from mnc_backends.torch.names import population_key, projection_key
from mnc_backends.torch.plan import INPUT
from mnc_backends.torch.step_norm import normalise

if TYPE_CHECKING:
    from mnc_backends.torch.module import MouseNet


@dataclass(frozen=True)
class Read:
    """How a source is prepared for the projections that read it with one stride and
    upsampling: upsample, pad (left, right, top, bottom), split into stride**2 phases."""

    source: str
    stride: int
    upsample: int
    padding_lrtb: tuple[int, int, int, int]

    def prepare(self, activity: Tensor) -> Tensor:
        if self.upsample != 1:
            activity = activity.repeat_interleave(self.upsample, dim=-2).repeat_interleave(
                self.upsample, dim=-1)
        padded = F.pad(activity, self.padding_lrtb)
        return padded if self.stride == 1 else F.pixel_unshuffle(padded, self.stride)


@dataclass(frozen=True)
class TapList:
    """The kept taps of one projection over its ``Read``, per output channel (ascending):
    forward order (``starts``, channel, dy, dx) and, for the input gradient, transposed
    (over the output gradient padded by ``grad_padding``, sorted by input channel)."""

    key: str
    """The projection's conv key in ``MouseNet.convs``."""
    kept: Tensor
    """int64 flat indices of the kept taps in the (out, in, k, k) weight."""
    starts: np.ndarray
    channel: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    t_order: Tensor
    """Forward tap index of each transposed tap."""
    t_starts: np.ndarray
    t_channel: np.ndarray
    t_dy: np.ndarray
    t_dx: np.ndarray
    grad_padding: tuple[int, int, int, int]
    window: tuple[tuple[int, int], tuple[int, int]]
    """Rows and columns of the read tensor whose input gradient is computed: those over the
    source's pixels (not the padding), widened to whole vectors where the tensor allows."""


VECTOR = 16
"""Floats per widest vector of the kernel: input-gradient windows are widened to it."""


def _window(start: int, stop: int, size: int, multiple: int = 1) -> tuple[int, int]:
    """[start, stop) widened to a multiple of ``multiple`` inside [0, size)."""
    width = min(size, -(-(stop - start) // multiple) * multiple)
    start = min(start, size - width)
    return start, start + width


def _starts(channels: np.ndarray, count: int) -> np.ndarray:
    return np.r_[0, np.cumsum(np.bincount(channels, minlength=count))].astype(np.int64)


def tap_list(key: str, mask: np.ndarray, read: Read, padding_lrtb: tuple[int, int, int, int],
             source_shape: tuple[int, int], in_shape: tuple[int, int, int],
             out_shape: tuple[int, int]) -> TapList:
    """Taps of a projection (``mask``: its effective mask; nonzero entries are kept) with
    padding ``padding_lrtb`` over ``read``'s tensor of ``in_shape`` (C, H, W), made from a
    source of ``source_shape`` (H, W, after upsampling), for an output of ``out_shape``."""
    s = read.stride
    co, ci, ky, kx = np.nonzero(mask)
    ry = read.padding_lrtb[2] - padding_lrtb[2] + ky
    rx = read.padding_lrtb[0] - padding_lrtb[0] + kx
    channel = (ci * s * s + (ry % s) * s + rx % s).astype(np.int32)
    dy, dx = (ry // s).astype(np.int32), (rx // s).astype(np.int32)
    out_channels = mask.shape[0]
    kept = np.ravel_multi_index((co, ci, ky, kx), mask.shape)
    in_channels, in_h, in_w = in_shape
    out_h, out_w = out_shape
    top, left = int(dy.max(initial=0)), int(dx.max(initial=0))
    grad_padding = (left, in_w - out_w, top, in_h - out_h)
    order = np.lexsort((left - dx, top - dy, co, channel))
    s_top, s_left = read.padding_lrtb[2], read.padding_lrtb[0]
    rows, columns = source_shape
    window = (_window(s_top // s, -(-(s_top + rows) // s), in_h),
              _window(s_left // s, -(-(s_left + columns) // s), in_w, VECTOR))
    return TapList(
        key, torch.from_numpy(kept.astype(np.int64)), _starts(co, out_channels), channel,
        dy, dx, torch.from_numpy(order.astype(np.int64)), _starts(channel[order], in_channels),
        co[order].astype(np.int32), (top - dy[order]).astype(np.int32),
        (left - dx[order]).astype(np.int32), grad_padding, window)


def _pointer(array: np.ndarray | Tensor) -> int:
    return array.ctypes.data if isinstance(array, np.ndarray) else array.data_ptr()


def _strides(tensor: Tensor) -> np.ndarray:
    """(row, plane, image) strides of an (N, C, H, W) float32 tensor or view, in floats."""
    return np.array([tensor.stride(2), tensor.stride(1), tensor.stride(0)], dtype=np.int64)


def _correlate(source: Tensor, starts: np.ndarray, channel: np.ndarray, dy: np.ndarray,
               dx: np.ndarray, weights: Tensor, out: Tensor, accumulate: bool) -> None:
    """``out`` (an (N, C, H, W) tensor or view) = (``accumulate``: ``out`` +) the tap sums
    over ``source`` (a tensor or view whose rows are contiguous)."""
    count, in_channels, in_h, in_w = source.shape
    _, out_channels, out_h, out_w = out.shape
    assert source.stride(3) == 1 and out.stride(3) == 1 and weights.is_contiguous()
    in_strides, out_strides = _strides(source), _strides(out)
    status = native.library().mnc_train_correlate(
        source.data_ptr(), count, in_channels, in_h, in_w, in_strides.ctypes.data,
        out.data_ptr(), out_channels, out_h, out_w, out_strides.ctypes.data, _pointer(starts),
        _pointer(channel), _pointer(dy), _pointer(dx), weights.data_ptr(), int(accumulate),
        native.isa(), max(1, torch.get_num_threads()))
    if status:
        raise BackendError("sparse training kernel rejected its taps (an internal error); "
                           "use strategy 'merged'")


def _tap_gradient(grad: Tensor, source: Tensor, taps: TapList) -> Tensor:
    count, in_channels, in_h, in_w = source.shape
    _, out_channels, out_h, out_w = grad.shape
    result = torch.empty(len(taps.channel), dtype=torch.float32)
    status = native.library().mnc_train_tap_gradient(
        grad.data_ptr(), source.data_ptr(), count, in_channels, in_h, in_w, out_channels,
        out_h, out_w, _pointer(taps.starts), _pointer(taps.channel), _pointer(taps.dy),
        _pointer(taps.dx), result.data_ptr(), native.isa(), max(1, torch.get_num_threads()))
    if status:
        raise BackendError("sparse training kernel rejected its taps (an internal error); "
                           "use strategy 'merged'")
    return result


class _KeptTapDrive(torch.autograd.Function):
    """A population's drive: the sum of its projections' kept-tap sums over their prepared
    sources (bias excluded). Inputs: the tap lists and shape, then weights..., sources..."""

    @staticmethod
    def forward(ctx, taps: tuple[TapList, ...], shape: tuple[int, int, int],  # noqa: ANN001
                *tensors: Tensor) -> Tensor:
        weights, sources = tensors[:len(taps)], tensors[len(taps):]
        sources = tuple(source.contiguous() for source in sources)
        weights = tuple(weight.contiguous() for weight in weights)
        out = torch.empty((sources[0].shape[0], *shape), dtype=torch.float32)
        for index, (tap, weight, source) in enumerate(zip(taps, weights, sources, strict=True)):
            _correlate(source, tap.starts, tap.channel, tap.dy, tap.dx, weight, out,
                       accumulate=index > 0)
        ctx.taps = taps
        ctx.save_for_backward(*weights, *sources)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        taps = ctx.taps
        saved = ctx.saved_tensors
        weights, sources = saved[:len(taps)], saved[len(taps):]
        grad = grad.contiguous()
        weight_grads: list[Tensor | None] = []
        source_grads: list[Tensor | None] = []
        for index, (tap, weight, source) in enumerate(zip(taps, weights, sources, strict=True)):
            weight_grads.append(_tap_gradient(grad, source, tap)
                                if ctx.needs_input_grad[2 + index] else None)
            if not ctx.needs_input_grad[2 + len(taps) + index]:
                source_grads.append(None)
                continue
            padded = F.pad(grad, tap.grad_padding)
            # Only the window over the source's own pixels: the rest is the padding's gradient,
            # which the padding's backward drops unread (so it is left uninitialised)
            source_grad = torch.empty_like(source)
            (y0, y1), (x0, x1) = tap.window
            _correlate(padded[:, :, y0:, x0:], tap.t_starts, tap.t_channel, tap.t_dy, tap.t_dx,
                       weight[tap.t_order].contiguous(), source_grad[:, :, y0:y1, x0:x1],
                       accumulate=False)
            source_grads.append(source_grad)
        return (None, None, *weight_grads, *source_grads)


@dataclass(frozen=True)
class Target:
    """One population's incoming projections: (conv key, source, delay, read, taps)."""

    name: str
    shape: tuple[int, int, int]
    inputs: tuple[tuple[str, str, int, Read, TapList], ...]


def _reads(ir: IR) -> dict[str, Read]:
    """Per projection name, the ``Read`` of its source it uses (shared by the projections of
    one source, stride and upsampling; padded to the widest of them)."""
    widest: dict[tuple[str, int, int], list[int]] = {}
    for q in ir.projections:
        key = (q.source, q.stride, q.upsample)
        pads = widest.setdefault(key, [0, 0, 0, 0])
        widest[key] = [max(a, b) for a, b in zip(pads, q.padding_lrtb, strict=True)]
    reads = {}
    for key, (left, right, top, bottom) in widest.items():
        source, stride, upsample = key
        population = ir.population(source)
        height, width = population.height * upsample, population.width * upsample
        bottom += -(height + top + bottom) % stride  # whole phase images
        right += -(width + left + right) % stride
        reads[key] = Read(source, stride, upsample, (left, right, top, bottom))
    return {q.name: reads[(q.source, q.stride, q.upsample)] for q in ir.projections}


def _read_shape(ir: IR, read: Read) -> tuple[int, int, int]:
    population = ir.population(read.source)
    left, right, top, bottom = read.padding_lrtb
    height = population.height * read.upsample + top + bottom
    width = population.width * read.upsample + left + right
    s = read.stride
    return population.channels * s * s, height // s, width // s


def build_targets(model: MouseNet) -> dict[str, Target]:
    """Every computed population's incoming tap lists, from the model's present masks."""
    ir = model.ir
    reads = _reads(ir)
    targets: dict[str, list] = {}
    for q in ir.projections:
        key = projection_key(q.source, q.target)
        conv = model.convs[key]
        with torch.no_grad():
            mask = conv.effective_mask().detach().cpu().numpy()
        target = ir.population(q.target)
        read = reads[q.name]
        source = ir.population(q.source)
        taps = tap_list(key, mask, read, q.padding_lrtb,
                        (source.height * q.upsample, source.width * q.upsample),
                        _read_shape(ir, read), (target.height, target.width))
        targets.setdefault(q.target, []).append((key, q.source, q.delay, read, taps))
    result = {}
    for name, inputs in targets.items():
        population = ir.population(name)
        result[name] = Target(name, (population.channels, population.height, population.width),
                              tuple(inputs))
    return result


def training_problem(model: MouseNet, images: Tensor) -> str | None:
    """Why the sparse training path cannot run this call, or None when it can."""
    if not native.available():
        return f"native kernel unavailable ({native.unavailable_reason()})"
    if images.device.type != "cpu" or images.dtype != torch.float32:
        return f"input is {images.dtype} on {images.device}, the kernel needs float32 on cpu"
    if torch.is_autocast_enabled("cpu"):
        return "autocast is on (the kernel computes in float32 only)"
    inp = model.ir.input
    if images.dim() < 4 or tuple(images.shape[-3:]) != (inp.channels, inp.height, inp.width):
        return (f"input shape {tuple(images.shape)} does not end in the IR's image "
                f"({inp.channels}, {inp.height}, {inp.width})")
    if model.ir.mask.mode == "learnable":
        return "learnable masks are dense"
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        return "the parameters are not float32 on cpu"
    return None


class SparseTrainer:
    """Runs a ``MouseNet`` with autograd over the kept taps (shares its parameters)."""

    def __init__(self, model: MouseNet) -> None:
        self.model = model
        self._targets: dict[str, Target] | None = None
        self._masks_key: tuple | None = None
        self._schedules: dict[tuple[frozenset[str], tuple[int, ...]], Schedule] = {}

    def targets(self) -> dict[str, Target]:
        """Tap lists, rebuilt only when a mask changes (not at each optimizer step)."""
        masks = [conv.mask for conv in self.model.convs.values()]
        key = tuple((id(mask), mask._version) for mask in masks)  # noqa: SLF001
        if self._targets is None or key != self._masks_key:
            self._targets = build_targets(self.model)
            self._masks_key = key
        return self._targets

    def _drive(self, target: Target, sources: Mapping[tuple[str, int], Tensor],
               prepared: dict) -> Tensor | None:
        """The population's drive (bias included) from the present sources (by name and
        delay), or None when none of its inputs is present yet (recurrent networks).
        ``prepared``: each source already padded and split, shared by its readers."""
        model = self.model
        taps, weights, tensors, bias = [], [], [], None
        for key, source, delay, read, tap in target.inputs:
            activity = sources.get((source, delay))
            if activity is None:
                continue
            prepared_key = (id(activity), read)
            ready = prepared.get(prepared_key)
            if ready is None:
                ready = prepared[prepared_key] = (read.prepare(activity), activity)
            conv = model.convs[key]
            kept = tap.kept
            weights.append(conv.weight.reshape(-1)[kept] * conv.effective_mask().reshape(-1)[kept])
            taps.append(tap)
            tensors.append(ready[0])
            bias = conv.bias if bias is None else bias + conv.bias
        if not taps or bias is None:
            return None
        drive = _KeptTapDrive.apply(tuple(taps), target.shape, *weights, *tensors)
        return drive + bias.view(1, -1, 1, 1)

    def _population(self, name: str, drive: Tensor, step: int) -> Tensor:
        return F.relu(normalise(self.model.norms[population_key(name)], drive, step))

    def _schedule(self, keep: Sequence[str], steps: Sequence[int]) -> Schedule:
        key = (frozenset(keep), tuple(steps))
        schedule = self._schedules.get(key)
        if schedule is None:
            schedule = time_schedule(self.model.ir, list(keep), list(steps))
            schedule = self._schedules.setdefault(key, schedule)
        return schedule

    def _run(self, images: Tensor, schedule: Schedule) -> dict[tuple[str, int], Tensor]:
        """Walk ``schedule``; the activities no computation released (the caller's)."""
        model = self.model
        targets = self.targets()
        frames = model.frames(images) if model.recurrent else [images]
        activity = {(INPUT, step): frame.contiguous() for step, frame in enumerate(frames)}
        prepared: dict = {}
        for item in schedule.computations:
            target = targets[item.population]
            sources = {(read.source, read.delay): activity[(read.source, read.source_step)]
                       for read in item.inputs}
            drive = self._drive(target, sources, prepared)
            if drive is None:  # only delayed inputs, none present yet: it rests
                drive = images.new_zeros(images.shape[0], *target.shape)
            activity[(item.population, item.step)] = self._population(
                item.population, drive, item.step)
            for done in item.release:
                del activity[done]
        return activity

    def unrolled(self, images: Tensor, keep: Sequence[str], steps: Sequence[int]
                 ) -> list[dict[str, Tensor]]:
        """The activity of ``keep`` at each of ``steps`` (feed-forward: the one step 0)."""
        activity = self._run(images, self._schedule(keep, steps))
        return [{name: activity[(name, step)] for name in keep} for step in steps]

    def populations(self, images: Tensor, keep: Sequence[str] | None = None
                    ) -> dict[str, Tensor]:
        """Activity (after ReLU) by IR name: every population, or ``keep`` (computing only
        what they need); a recurrent network's: ``(N, T, C, H, W)``, every step."""
        model = self.model
        names = list(model.ir.population_names() if keep is None else keep)
        steps = range(model.ir.dynamics.steps)
        per_step = self.unrolled(images, names, steps)
        if not model.recurrent:
            return per_step[0]
        return {name: torch.stack([activity[name] for activity in per_step], dim=1)
                for name in names}

    def forward(self, images: Tensor) -> Tensor:
        model = self.model
        return model.readout_over_steps(self.unrolled(
            images, model.readout_populations, model.ir.dynamics.readout_range))
