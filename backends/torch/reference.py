"""Reference semantics, written as plainly as possible: the oracle and the benchmark baseline.

Every call multiplies each weight by its mask, pads the source explicitly with ``F.pad`` and
runs one convolution per projection; populations are visited in the IR's topological order.
It shares no code with ``MouseNet`` beyond the state-dict names, so the tests can hold the
compiled module to it (within 1e-5) and the benchmarks can measure every later optimisation
against it. Keep it slow and obvious.

A recurrent IR is run step after step, keeping every step's activity: a projection with
delay ``d`` reads its source's activity ``d`` steps back and adds nothing before step ``d``;
a population with no input present yet gets a drive of zeros; each step has its own BatchNorm
running statistics (one affine map). A projection with ``upsample``
repeats each source pixel that many times along both axes before padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnc.errors import BackendError
from mnc.ir.model import IR, Projection
from mnc_backends.torch.names import population_key, projection_key


class ReferenceConv(nn.Module):
    """Holds ``weight``, ``bias`` and ``mask`` under the contract's names; no logic."""

    mask: Tensor

    def __init__(self, out_channels: int, in_channels: int, kernel_size: int) -> None:
        super().__init__()
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("mask", torch.ones(shape))


class ReferenceStepNorm(nn.Module):
    """A recurrent network's BatchNorm tensors: running statistics per step ``(steps, C)``,
    one ``weight`` and ``bias``; no logic (``ReferenceMouseNet._step`` applies them)."""

    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor

    def __init__(self, channels: int, steps: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        shape = (steps, channels) if steps > 1 else (channels,)
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))


class ReferenceMouseNet(nn.Module):
    """Same state-dict names as ``MouseNet``; load its ``state_dict()`` before use."""

    def __init__(self, ir: IR) -> None:
        super().__init__()
        if ir.mask.mode == "learnable":
            raise BackendError("the reference network covers fixed masks only "
                               "(mask modes gaussian, none, expected), not 'learnable'")
        self.ir = ir
        self.convs = nn.ModuleDict({
            projection_key(q.source, q.target): ReferenceConv(q.out_channels, q.in_channels,
                                                              q.kernel_size)
            for q in ir.projections})
        steps = ir.dynamics.steps
        self.norms = nn.ModuleDict({
            population_key(p.name): ReferenceStepNorm(p.channels, steps) if ir.is_recurrent
            else nn.BatchNorm2d(p.channels)
            for p in ir.populations if p.name != "input"})
        self.classifier = nn.Linear(ir.readout.features, ir.readout.classes)

    def _convolve(self, projection: Projection, source: Tensor) -> Tensor:
        conv = self.convs[projection_key(projection.source, projection.target)]
        assert isinstance(conv, ReferenceConv)
        factor = projection.upsample
        if factor != 1:  # nearest neighbour: output pixel i reads source pixel i // factor
            rows = torch.arange(source.shape[2] * factor, device=source.device) // factor
            columns = torch.arange(source.shape[3] * factor, device=source.device) // factor
            source = source[:, :, rows][:, :, :, columns]
        padded = F.pad(source, projection.padding_lrtb)
        return F.conv2d(padded, conv.weight * conv.mask, conv.bias, stride=projection.stride)

    def _step(self, image: Tensor, history: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Activity of every population at step ``len(history)``; ``history[s]`` is step s."""
        now = len(history)
        activity = {"input": image}
        for population in self.ir.populations:
            if population.name == "input":
                continue
            incoming = [q for q in self.ir.projections if q.target == population.name]
            if not incoming:
                raise BackendError(f"population {population.name!r} has no incoming projection")
            total = torch.zeros(image.shape[0], population.channels, population.height,
                                population.width, dtype=image.dtype, device=image.device)
            for projection in incoming:
                if projection.delay == 0:
                    total = total + self._convolve(projection, activity[projection.source])
                elif now - projection.delay >= 0:
                    source = history[now - projection.delay][projection.source]
                    total = total + self._convolve(projection, source)
            norm = self.norms[population_key(population.name)]
            if isinstance(norm, ReferenceStepNorm):  # this step's running statistics
                if self.training and now == 0:  # a run counts as one batch
                    norm.num_batches_tracked.add_(1)
                mean, var = norm.running_mean, norm.running_var
                if mean.dim() == 2:
                    mean, var = mean[now], var[now]
                total = F.batch_norm(total, mean, var, norm.weight, norm.bias, self.training,
                                     0.1, 1e-5)
            else:
                total = norm(total)
            activity[population.name] = F.relu(total)
        return activity

    def populations(self, images: Tensor) -> dict[str, Tensor]:
        """Activity of every population (after ReLU), by IR name; recurrent IRs: the activity
        at every step, ``(N, T, C, H, W)``."""
        if not self.ir.is_recurrent:
            return self._step(images, [])
        history = self.run_in_time(images)
        return {name: torch.stack([step[name] for step in history], dim=1)
                for name in history[0]}

    def run_in_time(self, images: Tensor) -> list[dict[str, Tensor]]:
        """Activity of every population at each step: ``images`` at every step (``still``)
        or ``images[:, t]`` at step t (``clip``)."""
        history: list[dict[str, Tensor]] = []
        for step in range(self.ir.dynamics.steps):
            image = images[:, step] if self.ir.dynamics.input == "clip" else images
            history.append(self._step(image, history))
        return history

    def _pooled(self, activity: dict[str, Tensor]) -> Tensor:
        pool = self.ir.readout.pool_size
        pooled = [F.adaptive_avg_pool2d(activity[name], pool).flatten(1)
                  for name in self.ir.readout.populations]
        return torch.cat(pooled, dim=1)

    def forward(self, images: Tensor) -> Tensor:
        if not self.ir.is_recurrent:
            return self.classifier(self._pooled(self._step(images, [])))
        history = self.run_in_time(images)
        readout = list(self.ir.dynamics.readout_range)
        total = self._pooled(history[readout[0]])
        for step in readout[1:]:
            total = total + self._pooled(history[step])
        return self.classifier(total / len(readout))
