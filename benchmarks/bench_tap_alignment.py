"""What unaligned loads cost the sparse kernel: the default spec's program as compiled, and the
same program with every tap's offset and every row pitch rounded to a multiple of 8 floats
(32-byte loads that never split a cache line) or 16 floats (64-byte loads on a cache line).

The rounded programs compute nothing meaningful (their taps read other pixels), and rounding
also folds neighbouring taps onto the same lines, so their times are an upper bound on what an
aligned layout could reach, not a result. They run in an arena twice the program's size, so
the longer pitches stay inside it. Times are the median of interleaved rounds, one image per
call, kernel only (no Python, no classifier).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_tap_alignment.py [spec] [--rounds N]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mnc.compiler import compile_ir
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


def rounded(ops: np.ndarray, multiple: int) -> np.ndarray:
    """The program with each tap offset rounded down and each segment pitch rounded up to
    ``multiple`` floats."""
    ops = ops.copy()
    i = 0
    while (op := int(ops[i])) != OP_END:
        i += 1
        if op != OP_CONV:
            i += FIELDS[op]
            continue
        channels = int(ops[i])
        i += CONV_FIELDS
        for _ in range(channels):
            segments = int(ops[i])
            i += 1
            for _ in range(segments):
                pitch, count = int(ops[i]), int(ops[i + 1])
                ops[i] = -(-pitch // multiple) * multiple
                taps = ops[i + 2:i + 2 + count]
                # the row of each tap stays; its column and the row start are rounded
                rows, columns = np.divmod(taps, pitch)
                ops[i + 2:i + 2 + count] = rows * ops[i] + columns // multiple * multiple
                i += 2 + count
    return ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", default="specs/mouse.yaml")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    ir = compile_ir(args.spec)
    model = MouseNet(ir)
    randomise_statistics(model, 0)
    program = compile_program(model.eval())
    library, isa = native.library(), native.isa()
    arena = np.zeros(2 * program.arena_size + 16, np.float32)
    skip = (-arena.ctypes.data % 64) // 4
    arenas = np.array([arena[skip:].ctypes.data], np.uint64)
    image = torch.randn(1, ir.input.channels, ir.input.height, ir.input.width)
    features = torch.empty(1, program.features)
    variants = {"as compiled": program.ops, "32-byte aligned": rounded(program.ops, 8),
                "64-byte aligned": rounded(program.ops, 16)}

    def run(ops: np.ndarray) -> None:
        status = library.mnc_sparse_run(ops.ctypes.data, program.weights.ctypes.data,
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
        print(f"{name:>16}: {seconds * 1e3:6.2f} ms/image  {macs / seconds / 1e9:5.1f} G MAC/s  "
              f"{base / seconds:4.2f}x")


if __name__ == "__main__":
    main()
