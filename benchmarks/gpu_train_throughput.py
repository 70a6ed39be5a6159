"""Training throughput (images/s) of a compiled spec on synthetic 64x64 data.

Measures three things, each after a warm-up:
  * model: SGD steps (recipe settings) on a batch already on the device, fp32 and AMP;
  * loader: the training DataLoader alone (uint8 images, random resized crop + flip in worker
    processes, pinned memory), to show whether data loading can keep up;
  * both together, as ``mnc train`` runs them.

    python benchmarks/gpu_train_throughput.py                      # GPU if present, else CPU
    python benchmarks/gpu_train_throughput.py --device cpu --batch-size 32 --steps 3
    python benchmarks/gpu_train_throughput.py --json results.json

Runs offline: the images are random bytes, the spec is specs/mouse.yaml by default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_throughput(model: torch.nn.Module, device: torch.device, batch: int, steps: int,
                     warmup: int, amp: bool, channels_last: bool, classes: int,
                     size: tuple[int, int]) -> float:
    from mnc_backends.torch.training.transforms import normalize_batch

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = torch.randint(0, 256, (batch, 3, *size), dtype=torch.uint8, device=device)
    labels = torch.randint(0, classes, (batch,), device=device)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    model.train()

    def step() -> None:
        inputs = normalize_batch(images, mean, std, channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - started)


def loader_throughput(batch: int, steps: int, workers: int, pin: bool,
                      size: tuple[int, int]) -> float:
    from mnc_backends.torch.training import datasets, loaders

    count = batch * (steps + 2)
    images = np.random.default_rng(0).integers(0, 256, (count, 3, 64, 64), dtype=np.uint8)
    view = datasets.ViewSettings(size, 3, 0.875, datasets.Augmentation((0.08, 1.0),
                                                                       (3 / 4, 4 / 3), True))
    dataset = datasets.ArrayDataset(images, np.zeros(count, dtype=np.int64), ["0"], view,
                                    "synthetic")
    sampler = loaders.ResumableDistributedSampler(dataset, 1, 0, seed=0)
    loader = loaders.make_loader(dataset, sampler, batch, workers, pin, 4)
    iterator = iter(loader)
    next(iterator)  # start the workers
    started = time.perf_counter()
    seen = 0
    for _ in range(steps):
        seen += next(iterator)[0].shape[0]
    return seen / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "mouse.yaml"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    import mnc

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ir = mnc.compile_ir(args.spec)
    size = (ir.input.height, ir.input.width)
    results: dict[str, object] = {
        "spec": args.spec, "content_hash": ir.short_hash, "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "torch": torch.__version__, "batch_size": args.batch_size, "steps": args.steps,
        "cpu_threads": torch.get_num_threads(), "input": list(size)}
    modes = [("fp32", False, False)]
    if device.type == "cuda":
        modes += [("fp32_channels_last", False, True), ("amp_bf16_channels_last", True, True)]
    for name, amp, channels_last in modes:
        model = mnc.compile(ir, backend="torch").to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        rate = model_throughput(model, device, args.batch_size, args.steps, args.warmup, amp,
                                channels_last, ir.readout.classes, size)
        results[f"model_{name}_img_per_s"] = round(rate, 1)
        print(f"model {name:<24} {rate:10.1f} img/s", flush=True)
        del model
    rate = loader_throughput(args.batch_size, max(4, args.steps), args.workers,
                             device.type == "cuda", size)
    results["loader_img_per_s"] = round(rate, 1)
    results["loader_workers"] = args.workers
    print(f"data loader ({args.workers} workers)     {rate:10.1f} img/s", flush=True)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
