"""Training steps of every CPU strategy side by side, in one run (default: the tiny spec).

    python benchmarks/bench_training_strategies.py [--spec tiny] [--batch 32] [--steps 3]
                                                   [--rounds 7] [--threads 1]

One model (float32 CPU, untrained weights, train mode) takes SGD steps (cross-entropy of
random labels, learning rate 0, so every strategy sees the same weights) under
``set_strategy("plain")``, ``"merged"`` and ``"sparse"`` in turn, ``--steps`` steps per
strategy and round, after two warm-up steps each, so load on a shared machine affects all
alike. Reports img/s from the median round, the ratio to merged, the load average and, per
strategy, the largest relative difference of a parameter's gradient (by norm; convolution
biases left out: under training-mode BatchNorm their true gradient is zero) from plain's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import mnc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny", help="spec name or file")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="steps per strategy and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = mnc.compile(args.spec, backend="torch").train()
    ir = model.ir
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, ir.input.channels, ir.input.height, ir.input.width,
                         generator=generator)
    labels = torch.randint(0, model.classifier.out_features, (args.batch,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)

    def step(strategy: str) -> dict[str, torch.Tensor]:
        model.set_strategy(strategy)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        return {name: p.grad.detach().clone() for name, p in model.named_parameters()
                if p.grad is not None and not (name.startswith("convs.")
                                               and name.endswith(".bias"))}

    strategies = ("plain", "merged", "sparse")
    gradients = {strategy: step(strategy) for strategy in strategies}
    for strategy in strategies:
        step(strategy)
    load = os.getloadavg()[0]
    times: dict[str, list[float]] = {strategy: [] for strategy in strategies}
    for _ in range(args.rounds):
        for strategy in strategies:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(strategy)
            times[strategy].append((time.perf_counter() - start) / args.steps)
    rates = {strategy: args.batch / statistics.median(times[strategy])
             for strategy in strategies}
    print(f"{ir.name}, batch {args.batch}, {args.threads} threads, median of {args.rounds} "
          f"rounds of {args.steps} steps, load {load:.2f} at the start and "
          f"{os.getloadavg()[0]:.2f} at the end")
    print(f"{'strategy':10s} {'img/s':>8s} {'/ merged':>9s} {'grad diff':>10s}")
    for strategy in strategies:
        truth = gradients["plain"]
        diff = max(float((gradients[strategy][name] - grad).norm() / grad.norm())
                   for name, grad in truth.items() if float(grad.norm()) > 0)
        print(f"{strategy:10s} {rates[strategy]:8.1f} {rates[strategy] / rates['merged']:8.2f}x "
              f"{diff:10.1e}")


if __name__ == "__main__":
    main()
