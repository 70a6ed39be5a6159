"""Throughput of the torch backend against the reference-semantics baseline, in one run.

    python benchmarks/bench_torch.py [--spec specs/mouse.yaml] [--repeats 3] [--threads N]

Cases: forward in eval mode at batch 64 and batch 1, and one SGD train step at batch 64.
The baseline is ``mnc_backends.torch.reference.ReferenceMouseNet`` (weight * mask on every
call, ``F.pad`` then one convolution per projection); every later optimisation is reported
as a ratio to it. The two networks hold the same state and are timed alternately, so load
on a shared machine affects both alike; the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import mnc
from mnc_backends.torch import MouseNet
from mnc_backends.torch.reference import ReferenceMouseNet

ROOT = Path(__file__).resolve().parents[1]


def _forward(model: nn.Module, images: torch.Tensor) -> Callable[[], None]:
    model.eval()

    def run() -> None:
        with torch.no_grad():
            model(images)
    return run


def _train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor
                ) -> Callable[[], None]:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return run


def _seconds(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(case: str, batch: int, steps: dict[str, Callable[[], None]], repeats: int,
            device: torch.device) -> dict[str, object]:
    """Median seconds per call of each candidate, timed alternately after one warm-up."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(_seconds(step, device))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"case": case, "batch": batch,
            "images_per_s": {name: batch / seconds for name, seconds in medians.items()},
            "speedup": medians["reference"] / medians["module"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "mouse.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ir = mnc.compile_ir(args.spec)
    module = MouseNet(ir).to(device)
    reference = ReferenceMouseNet(ir).to(device)
    reference.load_state_dict(module.state_dict())
    shape = (ir.input.channels, ir.input.height, ir.input.width)
    generator = torch.Generator().manual_seed(0)
    big = torch.randn(64, *shape, generator=generator).to(device)
    one = big[:1].clone()
    labels = torch.randint(0, ir.readout.classes, (64,), generator=generator).to(device)
    models = {"reference": reference, "module": module}
    results = [
        compare("forward (eval)", 64, {k: _forward(m, big) for k, m in models.items()},
                args.repeats, device),
        compare("forward (eval)", 1, {k: _forward(m, one) for k, m in models.items()},
                max(args.repeats, 10), device),
        compare("train step (SGD)", 64,
                {k: _train_step(m, big, labels) for k, m in models.items()},
                args.repeats, device),
    ]
    machine = (f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads, device {device}")
    if args.json:
        print(json.dumps({"spec": str(args.spec), "ir": ir.short_hash, "machine": machine,
                          "results": results}, indent=1))
        return
    print(f"spec {args.spec} (IR {ir.short_hash}); {machine}")
    print("| case | batch | reference (img/s) | module (img/s) | module / reference |")
    print("|---|---:|---:|---:|---:|")
    for row in results:
        rates = row["images_per_s"]
        print(f"| {row['case']} | {row['batch']} | {rates['reference']:.1f} | "
              f"{rates['module']:.1f} | {row['speedup']:.2f}x |")


if __name__ == "__main__":
    main()
