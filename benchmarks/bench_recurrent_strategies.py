"""The plain and merged strategies side by side on a recurrent network, in one run.

    python benchmarks/bench_recurrent_strategies.py [--spec tiny-feedback] [--batch 8]
                                                    [--repeats 7] [--threads 1] [--train]

Times ``forward`` of one model (float32 CPU, untrained weights) under ``set_strategy("plain")``
and ``set_strategy("merged")``, alternately after one warm-up each, so load on a shared
machine affects both alike; reports the median per call, the ratio plain / merged and the
largest difference of the logits. Inference: eval mode under ``torch.inference_mode``;
``--train``: also a training step (train mode, forward and backward of the summed logits).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import mnc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny-feedback", help="spec name or file")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--train", action="store_true", help="also time a training step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = mnc.compile(args.spec, backend="torch")
    ir = model.ir
    shape: tuple[int, ...] = (ir.input.channels, ir.input.height, ir.input.width)
    if ir.dynamics.input == "clip":
        shape = (ir.dynamics.steps, *shape)
    images = torch.randn(args.batch, *shape, generator=torch.Generator().manual_seed(0))

    def infer(strategy: str) -> torch.Tensor:
        model.eval().set_strategy(strategy)
        with torch.inference_mode():
            return model(images)

    def train(strategy: str) -> torch.Tensor:
        model.train().set_strategy(strategy)
        model.zero_grad()
        logits = model(images)
        logits.sum().backward()
        return logits.detach()

    modes: dict[str, Callable[[str], torch.Tensor]] = {"eval": infer}
    if args.train:
        modes["train"] = train
    print(f"{ir.name} ({ir.dynamics.steps} steps), batch {args.batch}, {args.threads} "
          f"threads, median of {args.repeats}")
    for mode, run in modes.items():
        strategies = ("plain", "merged")
        times: dict[str, list[float]] = {strategy: [] for strategy in strategies}
        outputs = {strategy: run(strategy) for strategy in strategies}  # warm-up
        for _ in range(args.repeats):
            for strategy in strategies:
                start = time.perf_counter()
                run(strategy)
                times[strategy].append(time.perf_counter() - start)
        plain, merged = (statistics.median(times[strategy]) for strategy in strategies)
        difference = float((outputs["plain"] - outputs["merged"]).abs().max())
        print(f"{mode}: plain {1000 * plain:.1f} ms, merged {1000 * merged:.1f} ms per call; "
              f"plain / merged {plain / merged:.2f}x; max abs diff {difference:.1e}")


if __name__ == "__main__":
    main()
