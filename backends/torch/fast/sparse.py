"""The ``sparse`` strategy: run a MouseNet's inference with the native tap kernel.

``mnc.lowering.sparse_program`` lowers the network (its IR and the module's weights, eval
BatchNorm folded in per step) into the kernel's program: an int32 op stream over a per-image
arena of padded population buffers, and float weights. Recurrent networks run every step of
the time schedule in the one program; upsampled projections run as sub-pixel phases over
their coarse source.

The kernel returns the pooled readout features (averaged over the readout steps); the
classifier runs in torch. A features program (``compile_program(model, copies=...)``)
instead computes only the ancestors of the requested populations and copies their activity
out (``MouseNet.features``; every step of a recurrent network). Programs are held by the
model's ``PreparedCache``, rebuilt when the weights change.

The kernel trusts its program, so a program is built only from an IR that keeps the
compiler's invariants (``mnc.ir.invariants``) and is then proven, independently, to keep every
read and write inside its arrays (``program_check``).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from mnc.errors import BackendError
from mnc.ir.invariants import ir_problems
from mnc.lowering.sparse_layout import ALIGN
from mnc.lowering.sparse_program import Program, lower_program
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.prepared import PreparedCache
from mnc_backends.torch.fast.program_check import check_program, int32_stream
from mnc_backends.torch.fast.shared import all_finite, lowering_tensors

if TYPE_CHECKING:
    from mnc_backends.torch.module import MouseNet

__all__ = ["ALIGN", "Program", "SparseExecutor", "compile_program"]


def compile_program(model: MouseNet, copies: Sequence[str] | None = None,
                    tensors: dict[str, np.ndarray] | None = None) -> Program:
    """Lower a MouseNet (eval BatchNorm) into the kernel's program and weights, proven in
    bounds.

    With ``copies`` (population names), the program computes only their ancestors and its
    output per image is their activity, (C, H, W) each (every step's, for a recurrent
    network), in that order, instead of the pooled readout features. ``tensors``: the
    model's ``lowering_tensors``, if already made.
    """
    ir = model.ir
    problems = ir_problems(ir)  # an IR built in memory has met no file check
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BackendError(f"sparse strategy: IR {ir.name!r} is not one the compiler makes, so "
                           f"the kernel will not run it: {problems[0]}{more}")
    lowered = lower_program(ir, lowering_tensors(model) if tensors is None else tensors,
                            copies)
    if lowered.arena_size >= 2**31:
        raise BackendError(f"sparse strategy: IR {ir.name!r} needs {lowered.arena_size} floats "
                           f"of activations per image, more than int32 offsets address")
    program = Program(int32_stream(lowered.ops.tolist()), lowered.weights, lowered.arena_size,
                      lowered.features, lowered.taps, lowered.copied_steps, lowered.macs)
    check_program(program.ops, len(program.weights), program.arena_size, program.features,
                  _image_floats(model))
    return program


def _input_shape(model: MouseNet) -> tuple[int, ...]:
    """One input's shape: an image, or a clip of a frame per step."""
    inp, dynamics = model.ir.input, model.ir.dynamics
    image = (inp.channels, inp.height, inp.width)
    return (dynamics.steps, *image) if dynamics.input == "clip" else image


def _image_floats(model: MouseNet) -> int:
    return int(np.prod(_input_shape(model)))


_EXECUTORS: weakref.WeakSet[SparseExecutor] = weakref.WeakSet()
"""Every live executor, reset in a forked child (see ``_reset_after_fork``)."""


def _reset_executors_after_fork() -> None:
    for executor in list(_EXECUTORS):
        executor._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_executors_after_fork)


class SparseExecutor:
    """Runs a MouseNet's inference with the native kernel, batch split across threads."""

    def __init__(self, model: MouseNet, threads: int | None = None,
                 cache: PreparedCache | None = None) -> None:
        """``threads``: at most this many threads per call (default: torch's intra-op thread
        count, ``torch.get_num_threads()``, read at each call). A batch with at least that many
        images is split between the threads, one image at a time each; a smaller batch is
        shared, each thread computing part of every population's rows. ``cache``: where the
        programs are held (the model's own, from its dispatcher; default: one of its own)."""
        self.model = model
        self.threads = threads
        self._library = native.library()
        self.cache = PreparedCache(model) if cache is None else cache
        self._arenas: list[np.ndarray] = []
        # One call at a time: calls share the arenas (and each already uses every thread).
        self._lock = threading.Lock()
        _EXECUTORS.add(self)

    def _reset_after_fork(self) -> None:
        """In a forked child: the threads that held the lock or were writing the arenas
        exist only in the parent, so start with a free lock and fresh arenas."""
        self._lock = threading.Lock()
        self._arenas = []

    def program(self, copies: tuple[str, ...] | None = None) -> Program:
        """The program of the pooled readout (or of ``copies``: ``compile_program``), from
        the present weights."""
        def build() -> Program:
            tensors = self.cache.get("tensors", lambda: lowering_tensors(self.model))
            return compile_program(self.model, copies, tensors)

        return self.cache.get(("sparse", copies), build)

    def _arena_pointers(self, count: int, size: int) -> np.ndarray:
        """Addresses of ``count`` per-thread activation arenas, each starting on a cache line
        (the layout aligns buffers relative to it); zeroed once, since the padding borders are
        never written."""
        if any(len(arena) < size for arena in self._arenas):
            self._arenas = []  # (every program of one IR has one layout: never in practice)
        while len(self._arenas) < count:
            raw = np.zeros(size + ALIGN, dtype=np.float32)
            skip = (-raw.ctypes.data % (4 * ALIGN)) // 4
            self._arenas.append(raw[skip:skip + size])
        return np.array([arena.ctypes.data for arena in self._arenas[:count]], dtype=np.uint64)

    def pooled_features(self, images: Tensor) -> Tensor:
        """(N, features) readout features: pooled layer-5 activity, concatenated. Safe to call
        from several Python threads (the calls run one after another)."""
        with self._lock:
            return self._pooled_features(images)

    def _pooled_features(self, images: Tensor) -> Tensor:
        return self._execute(self.program(), images)

    def populations(self, images: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
        """Activity (after ReLU) of the named populations, ``(N, C, H, W)`` each, computing
        only their ancestors. Safe to call from several Python threads."""
        names = tuple(dict.fromkeys(names))
        if not all_finite(images):
            return self.model.plain_features(images, names)
        with self._lock:
            output = self._execute(self.program(names), images)
        activity, start = {}, 0
        recurrent = self.model.recurrent
        for name in names:
            population = self.model.ir.population(name)
            shape: tuple[int, ...] = (population.channels, population.height, population.width)
            if recurrent:  # every step's: (N, T, C, H, W)
                shape = (self.model.ir.dynamics.steps, *shape)
            size = int(np.prod(shape))
            # a copy per population: a view would keep the whole batch's output alive
            activity[name] = output[:, start:start + size].reshape(-1, *shape).clone(
                memory_format=torch.contiguous_format)
            start += size
        return activity

    def _execute(self, program: Program, images: Tensor) -> Tensor:
        """Run ``program`` on a batch: ``(N, program.features)`` outputs."""
        expected = _input_shape(self.model)
        if (tuple(images.shape[1:]) != expected or images.dim() != len(expected) + 1
                or images.dtype != torch.float32 or images.device.type != "cpu"):
            shape = ", ".join(map(str, expected))
            raise BackendError(f"sparse strategy: input {tuple(images.shape)} {images.dtype} "
                               f"on {images.device} is not (N, {shape}) float32 on cpu")
            # (the kernel reads that many floats per image)
        images = images.detach().contiguous()
        count = images.shape[0]
        features = torch.empty((count, program.features), dtype=torch.float32)
        threads = max(1, self.threads or torch.get_num_threads())
        arenas = self._arena_pointers(max(1, min(threads, count)), program.arena_size)
        status = self._library.mnc_sparse_run(
            program.ops.ctypes.data, program.weights.ctypes.data, arenas.ctypes.data,
            images.data_ptr(), count, images[0].numel() if count else 0, features.data_ptr(),
            program.features, native.isa(), threads)  # isa read per call: env may cap it
        if status:
            raise BackendError("sparse kernel rejected its program (an internal error); "
                               "use strategy 'merged'")
        return features

    def forward(self, images: Tensor) -> Tensor:
        if not all_finite(images):
            return self.model.plain_forward(images)
        classifier = self.model.classifier
        features = self.pooled_features(images)
        if _native_readout_serves(features, classifier):
            return self._readout(features, classifier.weight, classifier.bias)
        return torch.nn.functional.linear(features, classifier.weight, classifier.bias)

    def _readout(self, features: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        count, outputs = features.shape[0], weight.shape[0]
        logits = torch.empty((count, outputs), dtype=torch.float32)
        threads = max(1, self.threads or torch.get_num_threads())
        status = self._library.mnc_dense_readout(
            features.data_ptr(), count, features.shape[1], weight.data_ptr(), bias.data_ptr(),
            outputs, logits.data_ptr(), threads)
        if status:
            raise BackendError("sparse readout rejected its arguments (an internal error); "
                               "use strategy 'merged'")
        return logits


READOUT_MAX_IMAGES = 8
"""Up to this many images the kernel's own readout computes the logits (see
``mnc_dense_readout``); larger batches are a matrix product, which torch does well."""


def _native_readout_serves(features: Tensor, classifier: torch.nn.Module) -> bool:
    """Whether the kernel's readout computes the classifier here: a few images, a float32 CPU
    ``nn.Linear`` with a bias, no gradient wanted (``torch.no_grad`` or
    ``torch.inference_mode``: the latency path). With autograd on, torch's linear runs."""
    weight, bias = getattr(classifier, "weight", None), getattr(classifier, "bias", None)
    if not isinstance(classifier, torch.nn.Linear) or weight is None or bias is None:
        return False
    if torch.is_grad_enabled():
        return False
    return (features.shape[0] <= READOUT_MAX_IMAGES and features.is_contiguous()
            and all(t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous()
                    for t in (weight, bias))
            and weight.shape == (bias.shape[0], features.shape[1]))

