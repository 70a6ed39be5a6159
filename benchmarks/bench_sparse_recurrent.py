"""Sparse recurrent execution: the sparse kernel against merged and plain on recurrent networks,
and its cost per kept multiply-accumulate against the feed-forward network's, in one run.

    python benchmarks/bench_sparse_recurrent.py [--pairs tiny-feedback:tiny feedback:mouse]
        [--batch 16] [--threads 1 2] [--rounds 5] [--slow-rounds 3] [--json PATH]

Each pair is a recurrent spec and the feed-forward spec it is compared with (the default
``mouse`` for ``feedback``, whose feed-forward projections it shares). Per thread count and
pair: ``forward`` in eval mode under ``torch.inference_mode`` on one batch (untrained
weights, BatchNorm statistics and biases made non-trivial, per step), the recurrent network
under ``plain``, ``merged`` and ``sparse`` and the feed-forward one under ``sparse``, one
warm-up call each, then interleaved round by round; the median per image is reported (plain
and merged, much slower, take ``--slow-rounds``). Kept MACs per image: the sparse program's
taps times the pixels of each op (every step; upsampled projections as sub-pixel taps over
the coarse grid), and the masks' nonzero taps times their target's pixels over the
computations the time schedule makes (the network's own count). The 1-minute load average
is recorded before and after each comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch

import mnc
from mnc.lowering.schedule import time_schedule
from mnc_backends.torch import MouseNet
from mnc_backends.torch.fast.bench import machine, randomise_statistics
from mnc_backends.torch.fast.sparse import compile_program
from mnc_backends.torch.names import projection_key

RECURRENT_STRATEGIES = ("plain", "merged", "sparse")


def network_macs(model: MouseNet) -> int:
    """The masks' nonzero taps times their target's pixels, over every computation the time
    schedule makes for the readout (absent reads not counted)."""
    ir, total = model.ir, 0
    for computation in time_schedule(ir).computations:
        target = ir.population(computation.population)
        for read in computation.inputs:
            projection = ir.projection(read.projection)
            conv = model.convs[projection_key(projection.source, projection.target)]
            total += int(conv.mask.count_nonzero()) * target.height * target.width
    return total


def _model(spec: str) -> MouseNet:
    model = mnc.compile(spec, backend="torch").eval()
    randomise_statistics(model, seed=3)
    return model


def _images(model: MouseNet, batch: int) -> torch.Tensor:
    ir = model.ir
    shape: tuple[int, ...] = (ir.input.channels, ir.input.height, ir.input.width)
    if ir.dynamics.input == "clip":
        shape = (ir.dynamics.steps, *shape)
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))


def _call(model: MouseNet, strategy: str, images: torch.Tensor) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        model.set_strategy(strategy)
        with torch.inference_mode():
            return model(images)

    return run


def compare(recurrent_spec: str, feed_forward_spec: str, batch: int, rounds: int,
            slow_rounds: int) -> list[dict]:
    recurrent, feed_forward = _model(recurrent_spec), _model(feed_forward_spec)
    images, ff_images = _images(recurrent, batch), _images(feed_forward, batch)
    calls = {(recurrent_spec, strategy): _call(recurrent, strategy, images)
             for strategy in RECURRENT_STRATEGIES}
    calls[(feed_forward_spec, "sparse")] = _call(feed_forward, "sparse", ff_images)
    load_before = os.getloadavg()[0]
    outputs = {key: call() for key, call in calls.items()}  # warm-up (programs compiled)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    for round_index in range(rounds):
        for key, call in calls.items():
            if key[1] != "sparse" and round_index >= slow_rounds:
                continue
            start = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - start)
    load_after = os.getloadavg()[0]
    rows = []
    for (spec, strategy), samples in times.items():
        model = recurrent if spec == recurrent_spec else feed_forward
        steps = model.ir.dynamics.steps
        per_image = statistics.median(samples) / batch
        program_macs = compile_program(model).macs
        plain = outputs[(spec, "plain")] if (spec, "plain") in outputs else None
        difference = (float((outputs[(spec, strategy)] - plain).abs().max())
                      if plain is not None else None)
        rows.append({"spec": spec, "strategy": strategy, "steps": steps,
                     "threads": torch.get_num_threads(), "batch": batch,
                     "samples": len(samples), "ms_per_image": 1e3 * per_image,
                     "ms_per_step": 1e3 * per_image / steps,
                     "program_macs": program_macs, "network_macs": network_macs(model),
                     "ns_per_program_mac": 1e9 * per_image / program_macs,
                     "ns_per_network_mac": 1e9 * per_image / network_macs(model),
                     "max_abs_vs_plain": difference, "load_before": load_before,
                     "load_after": load_after})
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: one line per (threads, spec, strategy), with sparse's cost per kept MAC
    against the feed-forward network's of the same comparison."""
    lines = ["| threads | network | strategy | ms / image | ms / step | kept MACs / image "
             "(program; network) | ns / kept MAC | vs feed-forward | max abs vs plain "
             "| load (before, after) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        reference = next((other for other in rows if other["threads"] == row["threads"]
                          and other["steps"] == 1 and other.get("pair") == row.get("pair")),
                         None)
        ratio = (f"{row['ns_per_program_mac'] / reference['ns_per_program_mac']:.2f}x"
                 if reference is not None and row["strategy"] == "sparse" else "")
        difference = row["max_abs_vs_plain"]
        lines.append(
            f"| {row['threads']} | {row['spec']} | {row['strategy']} | "
            f"{row['ms_per_image']:.2f} | {row['ms_per_step']:.2f} | "
            f"{row['program_macs'] / 1e6:.0f} M; {row['network_macs'] / 1e6:.0f} M | "
            f"{row['ns_per_program_mac']:.3f} | {ratio} | "
            f"{'' if difference is None else f'{difference:.1e}'} | "
            f"{row['load_before']:.1f}, {row['load_after']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["tiny-feedback:tiny", "feedback:mouse"],
                        help="RECURRENT:FEED_FORWARD spec names")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slow-rounds", type=int, default=3,
                        help="rounds of plain and merged (the slow ones)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for pair in args.pairs:
            recurrent_spec, feed_forward_spec = pair.split(":")
            for row in compare(recurrent_spec, feed_forward_spec, args.batch, args.rounds,
                               args.slow_rounds):
                rows.append({**row, "pair": pair})
            print(table([row for row in rows if row["pair"] == pair
                         and row["threads"] == threads]), flush=True)
    print(f"\n{machine()}; batch {args.batch}; median of {args.rounds} interleaved rounds "
          f"(plain and merged: {args.slow_rounds})\n")
    print(table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
