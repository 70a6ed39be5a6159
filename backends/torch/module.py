"""The compiled network: one masked convolution per projection, BN + ReLU per population.

Every layer is built in ``__init__`` from the IR; ``forward`` only walks a plan computed once
from the IR's time schedule (``mnc.lowering.schedule``: per computation, a population at a
step, its incoming convolutions and which activities can be freed afterwards), so it has no
configuration branches and traces cleanly with ``torch.compile``, ``torch.export`` and
``torch.fx`` (each population's ReLU is a module of its own, ``populations.<key>``, for hooks
and feature extractors). ``features`` walks a plan restricted to what the requested
populations need, so asking for ``VISp4`` never runs the higher areas.

A feed-forward network is the schedule's one-step case. A recurrent IR (``ir.is_recurrent``:
several steps or delayed projections) runs the same loop over more steps: at step ``t`` a
population sums its delay-0 inputs at ``t`` and its delay-``d`` inputs at ``t - d`` (absent,
adding nothing, before step ``d``); the same convolutions, BatchNorm affine maps and ReLUs
serve every step, and each step has its own BatchNorm running statistics
(``StepBatchNorm2d``).

The plan's types (``plan``), the population module (``population``), the fast strategies
(``fast.dispatch``) and the Hugging Face folder writer and reader (``pretrained``) all sit
below this module and never import it at run time. The last two are imported where first
used, so a plain import of the module loads neither (and the ``fast`` package, whose
deprecated ``accelerate`` imports this module, is never entered half-way through it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnc.analysis.recurrence import describe_recurrence
from mnc.errors import BackendError
from mnc.imaging import Preprocessing
from mnc.ir.model import IR, Projection
from mnc.lowering.fresh_weights import fresh_weights
from mnc.lowering.schedule import time_schedule
from mnc.masks import all_masks
from mnc_backends.torch.masked_conv import LearnableMaskConv2d, MaskedConv2d
from mnc_backends.torch.names import population_key, projection_key
from mnc_backends.torch.plan import INPUT, Activity, TorchComputation, torch_plan
from mnc_backends.torch.population import Population
from mnc_backends.torch.step_norm import StepBatchNorm2d, normalise

if TYPE_CHECKING:
    from mnc_backends.torch.fast.dispatch import Dispatcher


def _incoming(ir: IR) -> dict[str, list[Projection]]:
    incoming: dict[str, list[Projection]] = {p.name: [] for p in ir.populations}
    for projection in ir.projections:
        incoming[projection.target].append(projection)
    return incoming


def _graph_capture(images: Tensor) -> bool:
    """Whether this call is being captured into a graph (``torch.compile``, ``torch.export``,
    ``torch.jit.trace``, ``torch.fx.symbolic_trace``): then only the plain path is traced."""
    return (isinstance(images, torch.fx.Proxy) or torch.compiler.is_compiling()
            or torch.jit.is_tracing())


class MouseNet(nn.Module):
    """A network compiled from an mnc IR: ``(N, C, H, W)`` images -> ``(N, classes)`` logits;
    a recurrent IR runs unrolled in time (``forward``, ``features``).

    State-dict names follow the weights contract: ``convs.<source>__<target>.{weight,bias,mask}``
    (``/`` in names becomes ``_``), ``norms.<population>.*``, ``classifier.{weight,bias}``;
    in the ``learnable`` mask mode every conv also has ``log_peak`` and ``log_sigma``.
    """

    def __init__(self, ir: IR, masks: Mapping[str, np.ndarray] | None = None) -> None:
        super().__init__()
        self.ir = ir
        incoming = _incoming(ir)
        for population in ir.populations:
            if population.name != INPUT and not incoming[population.name]:
                raise BackendError(f"IR {ir.name!r}: population {population.name!r} has no "
                                   f"incoming projection; only {INPUT!r} may be a source")
        if masks is None:
            masks = all_masks(ir)
        learnable = ir.mask.mode == "learnable"
        self.convs = nn.ModuleDict()
        for projection in ir.projections:
            arguments = dict(in_channels=projection.in_channels,
                             out_channels=projection.out_channels,
                             kernel_size=projection.kernel_size, stride=projection.stride,
                             padding_lrtb=projection.padding_lrtb,
                             mask=torch.from_numpy(np.asarray(masks[projection.name])),
                             upsample=projection.upsample)
            key = projection_key(projection.source, projection.target)
            if learnable:
                self.convs[key] = LearnableMaskConv2d(
                    **arguments, peak_probability=projection.peak_probability,
                    sigma_px=projection.sigma_px)
            else:
                self.convs[key] = MaskedConv2d(**arguments)
        # A recurrent network normalises each step by its own running statistics (one affine
        # map for all steps): see StepBatchNorm2d.
        steps = ir.dynamics.steps
        self.norms = nn.ModuleDict({
            population_key(p.name): StepBatchNorm2d(p.channels, steps) if ir.is_recurrent
            else nn.BatchNorm2d(p.channels)
            for p in ir.populations if p.name != INPUT})
        # Parameter-free, so the state dict keeps the weights contract's names; a module per
        # population gives hooks and feature extractors (torch.fx) a place to see activity.
        self.populations = nn.ModuleDict({
            population_key(p.name): Population(p.name) for p in ir.populations if p.name != INPUT})
        self.pool_size = ir.readout.pool_size
        self.readout_populations = tuple(ir.readout.populations)
        self.classifier = nn.utils.skip_init(nn.Linear, ir.readout.features, ir.readout.classes)
        self.recurrent = ir.is_recurrent
        """Unrolled in time: ``features`` gives every step's activity, ``(N, T, C, H, W)``."""
        self._plans: dict[tuple[frozenset[str], tuple[int, ...]],
                          tuple[TorchComputation, ...]] = {}
        self._plan = self._plan_for(self.readout_populations, ir.dynamics.readout_range)
        self.strategy = "auto"
        """Execution strategy of ``forward`` (see ``set_strategy``); not part of the state."""
        self.reset_parameters()

    @property
    def content_hash(self) -> str:
        return self.ir.content_hash

    def __repr__(self) -> str:
        """A few lines instead of ``nn.Module``'s listing of every layer (``layers_repr()``)."""
        ir = self.ir
        first = next(self.parameters(), None)
        placed = "no parameters" if first is None else \
            f"{first.device}, {str(first.dtype).removeprefix('torch.')}"
        count = sum(parameter.numel() for parameter in self.parameters())
        time = f"  time: {describe_recurrence(ir)}\n" if self.recurrent else ""
        return (f"MouseNet {ir.name!r} (IR hash {ir.short_hash})\n"
                f"  input {ir.input.channels}x{ir.input.height}x{ir.input.width} -> "
                f"{ir.readout.classes} classes; {len(ir.populations)} populations, "
                f"{len(self.convs)} masked convolutions, {count:,} parameters\n{time}"
                f"  strategy {self.strategy}, {placed}, {'train' if self.training else 'eval'} "
                f"mode, mask {ir.mask.mode}; layers_repr() lists every layer")

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """How images become this network's input, in the keys timm's models use: input size
        ``(C, H, W)``, per-channel ``mean`` and ``std`` (ImageNet's, as ``mnc.imaging`` and
        training apply them), ``crop_pct``, ``interpolation``, ``num_classes``, and the
        classifier's module name. The ONNX backend stores the same in its metadata."""
        inp = self.ir.input
        preprocessing = Preprocessing(height=inp.height, width=inp.width, channels=inp.channels)
        mean, std = preprocessing.channel_statistics()
        return {"input_size": (inp.channels, inp.height, inp.width),
                "mean": tuple(float(f"{value:.7g}") for value in mean),  # float32 -> as written
                "std": tuple(float(f"{value:.7g}") for value in std),
                "crop_pct": preprocessing.crop_fraction, "interpolation": "bilinear",
                "num_classes": self.ir.readout.classes, "classifier": "classifier",
                "architecture": self.ir.name, "content_hash": self.ir.content_hash}

    @property
    def default_cfg(self) -> dict[str, Any]:
        """``pretrained_cfg`` under the name older timm code reads."""
        return self.pretrained_cfg

    def save_pretrained(self, folder: str | Path, metrics: Mapping[str, float] | None = None
                        ) -> Path:
        """Write a folder as Hugging Face tools read one: ``config.json`` (the IR),
        ``model.safetensors``, ``preprocessor_config.json`` and a model card ``README.md``
        (the spec's sources, preprocessing, ``metrics`` where given); see
        ``mnc_backends.torch.pretrained``."""
        from mnc_backends.torch.pretrained import save_pretrained

        return save_pretrained(self, folder, metrics)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> MouseNet:
        """The network a ``save_pretrained`` folder holds (a local folder: nothing is
        downloaded)."""
        from mnc_backends.torch.pretrained import from_pretrained

        return from_pretrained(folder, cls)

    def layers_repr(self) -> str:
        """The full ``nn.Module`` listing: every convolution, norm and the classifier."""
        return nn.Module.__repr__(self)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The untrained weights of ``mnc.lowering.fresh_weights`` (same seed, same network,
        the same one the ONNX backend exports), over this module's masks."""
        masks = {}
        for projection in self.ir.projections:
            conv = self.convs[projection_key(projection.source, projection.target)]
            assert isinstance(conv, MaskedConv2d)
            masks[projection.name] = conv.mask.cpu().numpy()
        state = self.state_dict(keep_vars=True)
        for name, array in fresh_weights(self.ir, masks=masks).items():
            if not name.endswith(".mask"):
                state[name].copy_(torch.from_numpy(array))

    def _plan_for(self, names: Sequence[str], steps: Sequence[int]) -> tuple[TorchComputation, ...]:
        key = (frozenset(names), tuple(steps))
        plan = self._plans.get(key)
        if plan is None:
            schedule = time_schedule(self.ir, list(names), list(steps))
            plan = self._plans.setdefault(key, torch_plan(self.ir, schedule))
        return plan

    def _compute(self, item: TorchComputation, activity: Mapping[Activity, Tensor],
                 images: Tensor) -> Tensor:
        drive: Tensor | None = None
        for key, source in item.inputs:
            out = self.convs[key](activity[source])
            drive = out if drive is None else drive + out
        if drive is None:  # only delayed inputs, none present yet: the population rests
            drive = images.new_zeros(images.shape[0], *item.shape)
        return self.populations[item.norm](normalise(self.norms[item.norm], drive, item.step))

    def _run(self, images: Tensor, plan: tuple[TorchComputation, ...]) -> dict[Activity, Tensor]:
        """Walk ``plan``; the activities no computation released (the caller's)."""
        # a feed-forward network's one frame is the image (its convolutions check the shape)
        frames = self.frames(images) if self.recurrent else [images]
        activity = {(INPUT, step): frame for step, frame in enumerate(frames)}
        for item in plan:
            activity[item.activity] = self._compute(item, activity, images)
            for done in item.release:
                del activity[done]
        return activity

    def frames(self, images: Tensor) -> list[Tensor]:
        """The ``(N, C, H, W)`` image of each step of a recurrent network: a ``still`` image
        at every step, or frame ``t`` of an ``(N, T, C, H, W)`` clip at step ``t``; any other
        shape is a BackendError naming the expected one."""
        ir, steps = self.ir, self.ir.dynamics.steps
        image = (ir.input.channels, ir.input.height, ir.input.width)
        clip = ir.dynamics.input == "clip"
        expected = (steps, *image) if clip else image
        traced = isinstance(images, torch.fx.Proxy) or torch.jit.is_tracing()
        if not traced and (images.dim() != len(expected) + 1
                           or tuple(images.shape[1:]) != expected):
            shape = ", ".join(map(str, expected))
            what = (f"a clip of {steps} frames (one per step): expected input of shape "
                    f"(N, T, C, H, W) = (N, {shape})") if clip else (
                    f"one still image shown at all {steps} steps: expected input of shape "
                    f"(N, C, H, W) = (N, {shape})")
            raise BackendError(f"IR {ir.name!r} takes {what}, got {tuple(images.shape)}")
        return [images[:, step] for step in range(steps)] if clip else [images] * steps

    def pooled_features(self, activity: Mapping[str, Tensor]) -> Tensor:
        """The classifier's input: each readout population pooled to pool_size^2, flattened
        (C, H, W) and concatenated, ``(N, features)``."""
        pooled = [F.adaptive_avg_pool2d(activity[name], self.pool_size).flatten(1)
                  for name in self.readout_populations]
        return torch.cat(pooled, dim=1)

    def readout(self, activity: Mapping[str, Tensor]) -> Tensor:
        """Pool each readout population to pool_size^2, flatten (C, H, W), concat, Linear."""
        return self.classifier(self.pooled_features(activity))

    def forward(self, images: Tensor) -> Tensor:
        """Logits, computed by ``self.strategy``: by default (``auto``) the fastest execution
        strategy that applies to this call, all within 1e-4 of ``plain_forward``. Hooks: see
        ``population_module``.

        A recurrent network (``self.recurrent``) runs unrolled in time (plain or merged). Its
        input: ``(N, C, H, W)`` for ``dynamics.input == "still"`` (the image is shown at every
        step), ``(N, steps, C, H, W)`` for ``"clip"``."""
        if self.strategy == "plain" or _graph_capture(images):
            return self.plain_forward(images)  # graph compilers optimise the plain graph
        return self.dispatcher().run(images, self.strategy)

    def plain_forward(self, images: Tensor) -> Tensor:
        """One masked convolution per projection, exactly as the IR describes the network.

        Recurrent: unrolled over ``ir.dynamics.steps``; the pooled readout features of the
        steps in ``ir.dynamics.readout_range`` are averaged, then classified."""
        activity = self._run(images, self._plan)
        return self.readout_over_steps([
            {name: activity[(name, step)] for name in self.readout_populations}
            for step in self.ir.dynamics.readout_range])

    def readout_over_steps(self, per_step: Sequence[Mapping[str, Tensor]]) -> Tensor:
        """A recurrent network's logits: the pooled features of each step's activity,
        averaged over the steps, then the classifier (one step: ``readout``)."""
        if len(per_step) == 1:  # the average of one step is that step
            return self.readout(per_step[0])
        pooled = [self.pooled_features(activity) for activity in per_step]
        return self.classifier(torch.stack(pooled).mean(dim=0))

    def set_strategy(self, strategy: str) -> MouseNet:
        """Force an execution strategy (``auto``, ``plain``, ``merged``, ``sparse``; see
        ``mnc_backends.torch.fast.dispatch``); returns self. ``auto`` picks one per call;
        a recurrent network runs ``auto``, ``plain`` or ``merged``."""
        from mnc_backends.torch.fast.dispatch import check_strategy

        self.strategy = check_strategy(strategy, self.ir)
        return self

    def dispatcher(self) -> Dispatcher:
        """The executors behind the fast strategies, built on first use; not copied or
        pickled with the module (its caches are rebuilt from the weights)."""
        dispatcher = self.__dict__.get("_dispatcher")
        if dispatcher is None:
            from mnc_backends.torch.fast.dispatch import Dispatcher

            dispatcher = self.__dict__["_dispatcher"] = Dispatcher(self)
        return dispatcher

    def invalidate(self) -> None:
        """Drop what the fast strategies prepared from the weights (folded kernels, sparse
        programs, mask density). Changes torch tracks (in-place updates, optimizer steps,
        ``load_state_dict``) are seen without it; call it after writing weights or masks
        some other way (through ``tensor.numpy()``, DLPack, ``param.data = ...``)."""
        dispatcher = self.__dict__.get("_dispatcher")
        if dispatcher is not None:
            dispatcher.cache.invalidate()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_dispatcher", None)
        return state

    def features(self, images: Tensor, populations: Sequence[str] | None = None
                 ) -> dict[str, Tensor]:
        """Activity (after ReLU) of the named populations, computing only their ancestors.

        Names are the IR's (``"VISl2/3"``); ``None`` means every population. ``"input"`` is
        the image itself. Runs ``self.strategy`` as ``forward`` does (``sparse`` for CPU
        float32 inference), all within 1e-4 of ``plain_features``.

        Each value is ``(N, C, H, W)``; for a recurrent network (``self.recurrent``) it is
        ``(N, T, C, H, W)``, the activity at each of the ``T = ir.dynamics.steps`` steps
        (``"input"``: the image each step saw).
        """
        names = self.population_names(populations)
        if self.strategy == "plain" or _graph_capture(images):
            return self.plain_features(images, names)
        return self.dispatcher().features(images, names, self.strategy)

    def population_names(self, populations: str | Sequence[str] | None = None) -> list[str]:
        """IR names of ``populations`` (one name, several, or ``None``: every population),
        checked against the IR."""
        names = list(self.ir.population_names() if populations is None else populations)
        if isinstance(populations, str):
            names = [populations]
        known = set(self.ir.population_names())
        unknown = [name for name in names if name not in known]
        if unknown:
            raise BackendError(f"unknown population {unknown[0]!r} for IR {self.ir.name!r}; "
                               f"known: {', '.join(self.ir.population_names())}")
        return names

    def population_module(self, population: str) -> Population:
        """The module whose output is a population's activity (after ReLU), by IR name
        (``"VISl2/3"``) or key (``"VISl2_3"``); it is ``populations.<key>`` in the module tree,
        and its ReLU is the node ``populations.<key>.relu`` of ``torch.fx`` graphs.

        Forward hooks on it see that activity on every call (every step a recurrent
        network computes it at: see ``mnc.lowering.schedule``). Hooks that return None run on
        the fast strategies, which call them with the activity they computed (their ``args``
        then cannot be read: the drive before the ReLU is not computed there); one that
        returns a value continues the call on the plain path from that population on. Any
        other hook (on a convolution or norm, a pre-hook, a backward hook) makes ``forward``
        and ``features`` run the plain strategy until it is
        removed (``mnc_backends.torch.fast.hooks``).
        """
        key = population_key(population)
        if key not in self.populations:
            detail = ("is the image itself (hook the model's forward pre-hook instead)"
                      if population == INPUT else "is not a population of this IR")
            names = [name for name in self.ir.population_names() if name != INPUT]
            raise BackendError(f"population {population!r} {detail}; IR {self.ir.name!r} "
                               f"has: {', '.join(names)}")
        return self.populations[key]  # type: ignore[return-value]

    def plain_features(self, images: Tensor, populations: Sequence[str]) -> dict[str, Tensor]:
        """``features`` by the plain strategy (no name check: see ``population_names``)."""
        names = list(populations)
        steps = range(self.ir.dynamics.steps)
        activity = self._run(images, self._plan_for(names, steps))
        if not self.recurrent:
            return {name: activity[(name, 0)] for name in names}
        return {name: torch.stack([activity[(name, step)] for step in steps], dim=1)
                for name in names}

    def conv(self, projection: str) -> MaskedConv2d:
        """The layer of a projection, by IR name (``"VISp4->VISl4"``) or key."""
        key = projection
        if "->" in projection:
            source, target = projection.split("->", 1)
            key = projection_key(source, target)
        if key not in self.convs:
            raise BackendError(f"unknown projection {projection!r} for IR {self.ir.name!r}")
        return self.convs[key]  # type: ignore[return-value]

    def effective_weight(self, projection: str) -> Tensor:
        """``weight * mask`` of a projection: what the convolution actually uses."""
        return self.conv(projection).effective_weight()

    def mask_density(self) -> float:
        """Fraction of conv taps the masks keep (nonzero), over all projections."""
        kept = total = 0
        for conv in self.convs.values():
            assert isinstance(conv, MaskedConv2d)
            kept += int(conv.mask.count_nonzero())
            total += conv.mask.numel()
        return kept / max(total, 1)
