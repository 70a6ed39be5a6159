"""What unaligned loads cost the sparse kernel: the default spec's program as compiled, and the
same program with every tap's offset and every row pitch rounded to a multiple of 8 floats
(32-byte loads that never split a cache line) or 16 floats (64-byte loads on a cache line).

The rounded programs compute nothing meaningful (their taps read other pixels), and rounding
also folds neighbouring taps onto the same lines, so their times are an upper bound on what an
aligned layout could reach, not a result. They run in an arena twice the program's size, so
the longer pitches stay inside it. Times are the median of interleaved rounds, one image per
call, kernel only (no Python, no classifier).

With ``--fold FLOATS`` it also runs the program with each tap list's offsets folded into
FLOATS floats from its first (same alignment, wrong sums): every op then reads a few kilobytes
that stay in the core's caches, which bounds what any cache blocking could gain.

With ``--per-op`` it also times each convolution of the program alone (a program of that one
op, its input left as the whole program wrote it): its share of the whole, its kept taps per
output channel and its rate, which is where the time goes.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_tap_alignment.py [spec] [--rounds N]
[--fold FLOATS]... [--per-op]``
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mnc.compiler import compile_ir
from mnc.errors import MncError
from mnc.lowering.sparse_ops import (
    CONV_FIELDS,
    COPY_FIELDS,
    OP_CONV,
    OP_COPY,
    OP_END,
    OP_PHASE,
    OP_PLACE,
    OP_POOL,
    PHASE_FIELDS,
    PLACE_FIELDS,
    POOL_FIELDS,
)
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.bench import kept_macs_per_image, randomise_statistics
from mnc_backends.torch.fast.sparse import compile_program
from mnc_backends.torch.module import MouseNet

FIELDS = {OP_PLACE: PLACE_FIELDS, OP_PHASE: PHASE_FIELDS, OP_POOL: POOL_FIELDS,
          OP_COPY: COPY_FIELDS}


@dataclass
class Op:
    """One op of a program: its code, its span of the stream and of the weights, and for a
    convolution its output (channels, height, width) and kept taps."""

    code: int
    start: int
    stop: int
    first_weight: int
    last_weight: int
    shape: tuple[int, int, int] = (0, 0, 0)
    taps: int = 0
    segments: list[int] = field(default_factory=list)
    """Stream positions of the convolution's segments (pitch, count, offsets...)."""


def walk(ops: np.ndarray) -> list[Op]:
    found, i, weight = [], 0, 0
    while (code := int(ops[i])) != OP_END:
        op = Op(code, i, 0, weight, 0)
        i += 1
        if code != OP_CONV:
            i += FIELDS[code]
        else:
            op.shape = (int(ops[i]), int(ops[i + 1]), int(ops[i + 2]))
            i += CONV_FIELDS
            for _ in range(op.shape[0]):
                segments = int(ops[i])
                i += 1
                weight += 1  # the channel's bias
                for _ in range(segments):
                    count = int(ops[i + 1])
                    op.segments.append(i)
                    op.taps += count
                    weight += count
                    i += 2 + count
        op.stop, op.last_weight = i, weight
        found.append(op)
    return found


def rounded(ops: np.ndarray, multiple: int) -> np.ndarray:
    """The program with each tap offset rounded down and each segment pitch rounded up to
    ``multiple`` floats."""
    ops = ops.copy()
    for op in walk(ops):
        for i in op.segments:
            pitch, count = int(ops[i]), int(ops[i + 1])
            ops[i] = -(-pitch // multiple) * multiple
            # the row of each tap stays; its column and the row start are rounded
            rows, columns = np.divmod(ops[i + 2:i + 2 + count], pitch)
            ops[i + 2:i + 2 + count] = rows * ops[i] + columns // multiple * multiple
    return ops


def folded(ops: np.ndarray, span: int) -> np.ndarray:
    """The program with each tap list's offsets taken modulo ``span`` floats from its
    smallest (``span`` a multiple of 16 keeps every tap's alignment)."""
    ops = ops.copy()
    for op in walk(ops):
        for i in op.segments:
            count = int(ops[i + 1])
            if count:
                offsets = ops[i + 2:i + 2 + count]
                ops[i + 2:i + 2 + count] = offsets.min() + (offsets - offsets.min()) % span
    return ops


def checked_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> MouseNet:
    """The network of ``args.spec`` in eval mode with random BatchNorm statistics, after
    checking ``args.rounds``; a bad spec or count is one usage error."""
    if args.rounds < 1:
        parser.error("--rounds: give at least 1")
    try:
        ir = compile_ir(args.spec)
    except MncError as error:
        parser.error(str(error))
    model = MouseNet(ir)
    randomise_statistics(model, 0)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", default="specs/mouse.yaml")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--fold", type=int, action="append", default=[], metavar="FLOATS",
                        help="also run with each tap list folded into FLOATS floats (repeat)")
    parser.add_argument("--per-op", action="store_true", help="also time each convolution alone")
    args = parser.parse_args()
    model = checked_model(parser, args)
    ir = model.ir
    program = compile_program(model)
    library, isa = native.library(), native.isa()
    arena = np.zeros(2 * program.arena_size + 16, np.float32)
    skip = (-arena.ctypes.data % 64) // 4
    arenas = np.array([arena[skip:].ctypes.data], np.uint64)
    image = torch.randn(1, ir.input.channels, ir.input.height, ir.input.width)
    features = torch.empty(1, program.features)
    variants = {"as compiled": program.ops, "32-byte aligned": rounded(program.ops, 8),
                "64-byte aligned": rounded(program.ops, 16)}
    for span in args.fold:
        if span < 16 or span % 16:
            parser.error(f"--fold {span}: give a multiple of 16 floats")
        variants[f"folded into {span}"] = folded(program.ops, span)

    def run(ops: np.ndarray, weights: np.ndarray = program.weights) -> None:
        status = library.mnc_sparse_run(ops.ctypes.data, weights.ctypes.data,
                                        arenas.ctypes.data, image.data_ptr(), 1,
                                        image.numel(), features.data_ptr(), program.features,
                                        isa, 1)
        assert status == 0

    times: dict[str, list[float]] = {name: [] for name in variants}
    for ops in variants.values():
        run(ops)
    for _ in range(args.rounds):
        for name, ops in variants.items():
            start = time.perf_counter()
            run(ops)
            times[name].append(time.perf_counter() - start)
    macs = kept_macs_per_image(model)
    base = statistics.median(times["as compiled"])
    print(f"{args.spec}: {macs / 1e9:.3f} G kept MACs per image, kernel {native.isa_name()}, "
          f"one thread, median of {args.rounds} interleaved rounds")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"{name:>20}: {seconds * 1e3:6.2f} ms/image  {macs / seconds / 1e9:5.1f} G MAC/s  "
              f"{base / seconds:4.2f}x")
    if args.per_op:
        print("each convolution alone (median of the rounds):")
        for op in walk(program.ops):
            if op.code != OP_CONV:
                continue
            alone = np.append(program.ops[op.start:op.stop], OP_END).astype(np.int32)
            weights = np.ascontiguousarray(program.weights[op.first_weight:op.last_weight])
            seconds = _median(functools.partial(run, alone, weights), args.rounds)
            channels, height, width = op.shape
            print(f"  {channels:3d} x {height}x{width}: {seconds * 1e3:6.3f} ms "
                  f"({seconds / base:5.1%})  {op.taps // channels:5d} taps per channel  "
                  f"{op.taps * height * width / seconds / 1e9:5.1f} G MAC/s")


def _median(call: Callable[[], None], rounds: int) -> float:
    call()
    values = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        values.append(time.perf_counter() - start)
    return statistics.median(values)


if __name__ == "__main__":
    main()
