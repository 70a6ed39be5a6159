"""Would a batch-major layout speed up the sparse kernel? One population's drive, computed by
the kernel as it is (one image at a time, 16 columns of a row per vector) and by a prototype
that holds 16 images in the lanes of a vector (``batch_major_prototype.c``).

In the batch-major layout every tap's load is one aligned vector, so no load splits a cache
line, and a stride-2 read needs no phase images; but every pixel of a source is 16 images
wide, so the rows an output block reads take 16 times the cache. The prototype sums blocks of
R rows x PX pixels in registers, taking the source planes G at a time so that a group can
stay in cache across the output channels. Its sums are checked against float64 numpy before
any time is printed. It is built with the C compiler (``CC``, default ``cc``) for the machine
it runs on (``-march=native``: AVX-512 for 16-float vectors where the CPU has it).

The kernel's time for a population is its convolution run alone, as
``bench_tap_alignment.py --per-op`` runs it (its stores of phase images included, which the
batch-major layout does without). One thread; per image.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_batch_major.py [spec] [--population NAME]...
[--rounds N]``
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from mnc.ir.model import IR
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.sparse import compile_program
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.names import projection_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tap_alignment import OP_CONV, OP_END, _median, checked_model, walk  # noqa: E402

LANES = 16
PROTOTYPE = Path(__file__).resolve().parent / "batch_major_prototype.c"
BLOCKS = ((4, 4), (3, 8), (2, 8))
"""Output blocks (rows, pixels) the prototype is built for: 16 to 24 vectors of sums."""


def export_taps(model: MouseNet, target: str, folder: Path) -> tuple[Path, np.ndarray, dict]:
    """The target's kept taps over its sources' planes (one zero padding for all of them) in
    the prototype's format, and the float64 weight of each tap."""
    ir = model.ir
    projections = [q for q in ir.projections if q.target == target]
    strides = {q.stride for q in projections}
    sizes = {ir.population(q.source).height for q in projections}
    if len(strides) != 1 or len(sizes) != 1 or any(q.upsample != 1 for q in projections):
        raise SystemExit(f"{target}: its projections read sources of different sizes or "
                         f"strides, or upsample; the prototype reads one kind")
    pad = max(max(q.padding_lrtb) for q in projections)
    size = sizes.pop()
    rows, weights, plane = [], [], 0
    for q in projections:
        conv = model.convs[projection_key(q.source, q.target)]
        effective = conv.effective_mask().detach()
        mask = effective.numpy()
        weight = (conv.weight.detach() * effective).double().numpy()
        co, ci, ky, kx = np.nonzero(mask)
        left, _, top, _ = q.padding_lrtb
        rows.append(np.stack([co, ci + plane, ky + pad - top, kx + pad - left], axis=1))
        weights.append(weight[co, ci, ky, kx])
        plane += q.in_channels
    taps = np.concatenate(rows).astype(np.int32)
    order = np.argsort(taps[:, 0], kind="stable")
    taps, tap_weights = taps[order], np.concatenate(weights)[order]
    population = ir.population(target)
    layout = {"planes": plane, "size": size, "padded": size + 2 * pad + 1, "pad": pad,
              "channels": population.channels, "out": population.height,
              "stride": projections[0].stride}
    header = np.array([plane, size, layout["padded"], population.channels, population.height,
                       layout["stride"], len(taps)], np.int32)
    path = folder / "taps.bin"
    with open(path, "wb") as file:
        header.tofile(file)
        taps.tofile(file)
        tap_weights.astype(np.float32).tofile(file)
    return path, taps, {**layout, "weights": tap_weights}


def expected(layout: dict, taps: np.ndarray, images: np.ndarray) -> np.ndarray:
    """float64 drive, ReLU applied: (channels, out, out, LANES)."""
    out, s = layout["out"], layout["stride"]
    result = np.zeros((layout["channels"], out, out, LANES))
    source = images.astype(np.float64)
    for (c, plane, dy, dx), weight in zip(taps, layout["weights"], strict=True):
        result[c] += weight * source[plane, dy:dy + s * out:s, dx:dx + s * out:s]
    return np.maximum(result, 0)


def build(folder: Path, rows: int, pixels: int) -> Path:
    binary = folder / f"prototype_{rows}x{pixels}"
    compiler = os.environ.get("CC", "cc")
    try:
        subprocess.run([compiler, "-O3", "-march=native", f"-DR={rows}", f"-DPX={pixels}",
                        str(PROTOTYPE), "-o", str(binary)], check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(
            f"cannot build {PROTOTYPE.name} with {compiler!r} (set CC): {error}") from None
    return binary


def kernel_op_seconds(model: MouseNet, target: str, rounds: int) -> float:
    """The kernel's time for the target's convolution alone, one image, one thread."""
    program = compile_program(model)
    computed = [p.name for p in model.ir.populations if p.name != "input"]
    convolutions = [op for op in walk(program.ops) if op.code == OP_CONV]
    op = convolutions[computed.index(target)]
    population = model.ir.population(target)
    assert op.shape == (population.channels, population.height, population.width), target
    library, isa = native.library(), native.isa()
    arena = np.zeros(program.arena_size + 16, np.float32)
    skip = (-arena.ctypes.data % 64) // 4
    arenas = np.array([arena[skip:].ctypes.data], np.uint64)
    ir = model.ir
    image = torch.randn(1, ir.input.channels, ir.input.height, ir.input.width)
    features = torch.empty(1, program.features)

    def run(ops: np.ndarray, weights: np.ndarray) -> None:
        status = library.mnc_sparse_run(ops.ctypes.data, weights.ctypes.data,
                                        arenas.ctypes.data, image.data_ptr(), 1, image.numel(),
                                        features.data_ptr(), program.features, isa, 1)
        assert status == 0

    run(program.ops, program.weights)  # the sources, as the whole program writes them
    alone = np.append(program.ops[op.start:op.stop], OP_END).astype(np.int32)
    weights = np.ascontiguousarray(program.weights[op.first_weight:op.last_weight])
    return _median(functools.partial(run, alone, weights), rounds)


def compare(model: MouseNet, target: str, rounds: int, folder: Path) -> None:
    path, taps, layout = export_taps(model, target, folder)
    rng = np.random.default_rng(0)
    pad, size, padded = layout["pad"], layout["size"], layout["padded"]
    images = np.zeros((layout["planes"], padded, padded, LANES), np.float32)
    images[:, pad:pad + size, pad:pad + size] = rng.standard_normal(
        (layout["planes"], size, size, LANES), dtype=np.float32)
    images.tofile(folder / "input.bin")
    truth = expected(layout, taps, images)
    macs = len(taps) * layout["out"] ** 2
    kernel = kernel_op_seconds(model, target, rounds)
    print(f"{target}: {layout['channels']} channels of {layout['out']}x{layout['out']}, "
          f"{len(taps) // layout['channels']} taps per channel over {layout['planes']} planes, "
          f"stride {layout['stride']}")
    print(f"  kernel, one image at a time: {kernel * 1e3:7.3f} ms per image "
          f"{macs / kernel / 1e9:5.1f} G MAC/s  1.00x")
    for rows, pixels in BLOCKS:
        binary = build(folder, rows, pixels)
        for group in sorted({4, 16, layout["planes"]}):
            result = subprocess.run(
                [str(binary), str(path), str(folder / "input.bin"), str(folder / "output.bin"),
                 str(group), str(rounds)], capture_output=True, text=True, check=True)
            seconds = float(result.stdout) / LANES
            got = np.fromfile(folder / "output.bin", np.float32).reshape(truth.shape)
            error = float(np.abs(got - truth).max() / max(np.abs(truth).max(), 1e-30))
            if error > 1e-4:
                raise SystemExit(f"{target}: the prototype's sums are off by {error:.1e}")
            print(f"  batch-major, {rows}x{pixels} blocks, {group:3d} planes a group: "
                  f"{seconds * 1e3:7.3f} ms per image {macs / seconds / 1e9:5.1f} G MAC/s  "
                  f"{kernel / seconds:4.2f}x")


def default_populations(ir: IR) -> list[str]:
    """The populations with the most kept taps per channel, read with strides 1 and 2."""
    return [name for name in ("VISp2/3", "VISl4") if name in {p.name for p in ir.populations}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", default="specs/mouse.yaml")
    parser.add_argument("--population", action="append", help="target population (repeat)")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    model = checked_model(parser, args)
    ir = model.ir
    computed = {q.target for q in ir.projections}
    for name in args.population or []:
        if name not in computed:
            parser.error(f"--population {name!r}: not a population the network computes; "
                         f"choose from {', '.join(sorted(computed))}")
    print(f"{args.spec}: kernel {native.isa_name()}, {LANES} images per vector in the "
          f"prototype, median of {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        for target in args.population or default_populations(ir):
            compare(model, target, args.rounds, Path(folder))


if __name__ == "__main__":
    main()
