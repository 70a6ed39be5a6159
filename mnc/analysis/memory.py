"""Bytes a build, a run, a training step or an export will allocate, estimated from the IR.

The parameter count alone misleads: building draws masks and initial weights in float64, the
merged strategy and the ONNX export pad every kernel leaving one source to a common box
(``mnc.lowering.merged``), which can hold many times the projection's own taps, and
activations grow with the batch. The estimate adds, for a task, every array it allocates, as
if none were freed before the peak: memory freed in between is often not returned to the
system, so the sum is the honest bound. Per-value costs (bytes, float32 = 4, float64 = 8):

- ``build``: per dense kernel tap 50 (the mask: float64 draws 8 + comparison 1 + float32 4;
  weight and mask buffer 8; initial weight: float64 mask copy, draws and product 24, mask test
  1, float32 copy 4); per BatchNorm / classifier value 4;
- ``run`` adds the merged strategy's cached folded kernels (4 per folded tap: the box, or an
  upsampled stride-1 group's sub-pixel split, ``MergedGroup.folded_kernel_taps``), the sparse
  kernel's program (100 per kept tap: indices, offsets and weights while it is lowered) and,
  per image, every population's activity plus every convolution's output (4 per value);
- ``train`` adds gradients and momentum (8 per tap), the box kernels built with autograd on
  every step (12 per box tap) and, per image, three copies of the activity and convolution
  outputs (forward values, values saved for the backward pass, gradients);
- ``export`` (ONNX): parameters drawn or loaded and folded in float64 (56 per tap) and the
  merged kernels as emitted (folded taps, as in ``run``) as arrays, initialisers and
  serialised bytes (16 per folded tap).

A recurrent network (``IR.dynamics.steps`` > 1) keeps the activity of every population at
every step (the per-step features; training through time saves every step for the backward
pass): activity counts ``steps`` times, and in training the convolution outputs and the
upsampled copies of coarse sources (``Projection.upsample``: source channels x the enlarged
grid) count ``steps`` times too; in inference those are made and dropped within a step, so
they count once.

Measured (peak RSS above the interpreter's, 2 CPU cores) on the default spec and on variants
whose widest kernel is 89 and 177 px (boxes 7x and 26x the default's): the estimates were
1.3x to 1.5x the measured peaks of build, inference at batch 64, a training step at batch 64
and export, except the default spec's export (164 MiB estimated, 194 MiB measured: onnx's
fixed costs dominate below 200 MB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from mnc.ir.model import IR, Projection
from mnc.lowering.merged import merged_groups
from mnc.text import format_bytes

Task = Literal["build", "run", "train", "export"]
TASKS: tuple[Task, ...] = ("build", "run", "train", "export")
TASK_WORDS = {"build": "building it", "run": "running it", "train": "training it",
              "export": "exporting it to ONNX"}

BUILD_BYTES_PER_TAP = 50
SMALL_BYTES_PER_VALUE = 4
RUN_BYTES_PER_BOX_TAP = 4
RUN_BYTES_PER_KEPT_TAP = 100
ACTIVATION_BYTES = 4
TRAIN_BYTES_PER_TAP = 8
TRAIN_BYTES_PER_BOX_TAP = 12
TRAIN_ACTIVATION_COPIES = 3
EXPORT_BYTES_PER_TAP = 56
EXPORT_BYTES_PER_BOX_TAP = 16


@dataclass(frozen=True)
class NetworkSizes:
    """The counts every estimate is made of (values, not bytes)."""

    kernel_taps: int
    """Dense kernel entries, summed over projections (out x in x k x k)."""
    box_taps: int
    """Entries of the merged kernel boxes, summed over merged groups (``mnc.lowering.merged``)."""
    folded_taps: int
    """Entries of the kernels emitted once BatchNorm is folded (ONNX export, merged
    inference): an upsampled stride-1 group's sub-pixel split holds more than its box."""
    kept_taps: float
    """Expected kernel entries the masks keep (the sparse kernel's taps)."""
    small_values: int
    """BatchNorm parameters and buffers, classifier weights and biases."""
    activity_values: int
    """Per image: every population's channels x height x width, input included."""
    conv_output_values: int
    """Per image and step: every projection's output, out channels x target grid."""
    upsampled_values: int = 0
    """Per image and step: the repeated source maps of upsampling projections."""
    steps: int = 1
    """Steps the network is unrolled."""


def network_sizes(ir: IR) -> NetworkSizes:
    """Counts from the IR alone; Python integers, so absurd files cannot overflow them."""
    kernel_taps = sum(q.out_channels * q.in_channels * q.kernel_size**2 for q in ir.projections)
    groups = merged_groups(ir)
    box_taps = sum(group.out_channels * group.in_channels * group.kernel_height
                   * group.kernel_width for group in groups)
    folded_taps = 0
    for group in groups:
        source = ir.population(group.source)
        folded_taps += group.folded_kernel_taps(source.height, source.width)
    if ir.mask.mode == "gaussian":
        kept = sum(q.out_channels * q.in_channels * q.kernel_size**2 * _kept_fraction(q)
                   for q in ir.projections)
    else:
        kept = float(kernel_taps)
    small = (4 * sum(p.channels for p in ir.populations if p.name != "input")
             + ir.readout.features * ir.readout.classes + ir.readout.classes)
    activity = sum(p.channels * p.height * p.width for p in ir.populations)
    outputs = 0
    upsampled = 0
    for q in ir.projections:
        target = ir.population(q.target)
        outputs += q.out_channels * target.height * target.width
        if q.upsample != 1:
            source = ir.population(q.source)
            upsampled += q.in_channels * source.height * source.width * q.upsample**2
    return NetworkSizes(kernel_taps, box_taps, folded_taps, kept, small, activity, outputs,
                        upsampled, ir.dynamics.steps)


def _kept_fraction(projection: Projection) -> float:
    """An upper bound of the share of a kernel the mask keeps, in O(kernel size):
    ``min(1, peak * g(dy) * g(dx)) <= peak * g(dy) * g(dx)``, summed over the separable
    Gaussian ``g``."""
    half = projection.kernel_size // 2
    sigma = max(projection.sigma_px, 1e-6)
    line = sum(math.exp(-offset * offset / (2 * sigma * sigma))
               for offset in range(-half, half + 1))
    return min(1.0, projection.peak_probability * line * line / projection.kernel_size**2)


@dataclass(frozen=True)
class MemoryEstimate:
    task: Task
    batch: int
    parts: dict[str, int] = field(default_factory=dict)
    """What the bytes are for -> bytes."""

    @property
    def total_bytes(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        """``12.3 GiB (weights and masks 8 GiB, merged kernels 4.3 GiB)``, largest first."""
        shown = sorted(((value, name) for name, value in self.parts.items() if value),
                       reverse=True)
        detail = ", ".join(f"{name} {format_bytes(value)}" for value, name in shown)
        return f"{format_bytes(self.total_bytes)} ({detail})" if detail else "0 B"


def estimate_memory(ir: IR, task: Task = "build", batch: int = 1,
                    sizes: NetworkSizes | None = None) -> MemoryEstimate:
    """Bytes ``task`` allocates for ``ir`` with ``batch`` images of the IR's input size."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    sizes = sizes or network_sizes(ir)
    batch = max(1, batch)
    parts: dict[str, int] = {}
    transient = sizes.conv_output_values + sizes.upsampled_values
    activations = batch * ACTIVATION_BYTES * (sizes.steps * sizes.activity_values + transient)
    through_time = batch * ACTIVATION_BYTES * sizes.steps * (sizes.activity_values + transient)
    images = f"activations of {batch} image(s)" + (f" x {sizes.steps} steps"
                                                  if sizes.steps > 1 else "")
    if task == "export":
        parts["weights, masks and folding"] = (EXPORT_BYTES_PER_TAP * sizes.kernel_taps
                                               + SMALL_BYTES_PER_VALUE * sizes.small_values)
        parts["merged kernel boxes"] = EXPORT_BYTES_PER_BOX_TAP * sizes.folded_taps
        return MemoryEstimate(task, batch, parts)
    parts["weights and masks"] = (BUILD_BYTES_PER_TAP * sizes.kernel_taps
                                  + SMALL_BYTES_PER_VALUE * sizes.small_values)
    if task == "run":
        parts["merged kernel boxes"] = RUN_BYTES_PER_BOX_TAP * sizes.folded_taps
        parts["sparse program"] = round(RUN_BYTES_PER_KEPT_TAP * sizes.kept_taps)
        parts[images] = activations
    elif task == "train":
        parts["gradients and momentum"] = (TRAIN_BYTES_PER_TAP * sizes.kernel_taps
                                           + 2 * SMALL_BYTES_PER_VALUE * sizes.small_values)
        parts["merged kernel boxes"] = TRAIN_BYTES_PER_BOX_TAP * sizes.box_taps
        parts[images] = TRAIN_ACTIVATION_COPIES * through_time
    return MemoryEstimate(task, batch, parts)


