"""Speed of ``MouseNet.features`` by the fast strategies against the plain path, in one run.

    python benchmarks/bench_features.py [--spec specs/mouse.yaml] [--batch 64] [--repeats 3]
                                        [--threads N] [--json PATH]

Every population of the spec (``input``, the image itself, included) is asked for at once, as
``features(images)`` does, in inference (eval mode, ``torch.inference_mode``), float32 on the
CPU: ``auto`` runs ``sparse`` there (the kernel copies each population's activity out of its
arena), forced ``merged`` and ``plain`` are the others. The candidates are timed alternately
after one warm-up, so load on a shared machine affects them alike; the median of the repeats
is reported, with the largest difference from the plain path's activity (absolute, and
relative to the population's largest activity). BatchNorm statistics and biases are
randomised as in ``mnc bench``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import mnc
from mnc_backends.torch import MouseNet
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.bench import randomise_statistics

ROOT = Path(__file__).resolve().parents[1]


def _differences(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
                 ) -> tuple[float, float]:
    absolute = relative = 0.0
    for name, activity in expected.items():
        difference = float((got[name] - activity).abs().max())
        absolute = max(absolute, difference)
        relative = max(relative, difference / max(1.0, float(activity.abs().max())))
    return absolute, relative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "mouse.yaml")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ir = mnc.compile_ir(args.spec)
    model = MouseNet(ir)
    randomise_statistics(model, seed=3)
    model.eval()
    names = list(ir.population_names())
    images = torch.randn(args.batch, ir.input.channels, ir.input.height, ir.input.width,
                         generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        candidates = {"plain": "plain", "merged": "merged",
                      f"auto ({model.dispatcher().choose(images)})": "auto"}
        results = {label: model.set_strategy(strategy).features(images, names)
                   for label, strategy in candidates.items()}
        times: dict[str, list[float]] = {label: [] for label in candidates}
        for _ in range(args.repeats):
            for label, strategy in candidates.items():
                model.set_strategy(strategy)
                start = time.perf_counter()
                model.features(images, names)
                times[label].append(time.perf_counter() - start)
    medians = {label: statistics.median(values) for label, values in times.items()}
    rows = []
    for label, seconds in medians.items():
        absolute, relative = _differences(results[label], results["plain"])
        rows.append({"strategy": label, "seconds": seconds, "images_per_s": args.batch / seconds,
                     "ratio": medians["plain"] / seconds, "max_abs_diff": absolute,
                     "max_rel_diff": relative})
    print(f"{ir.name}: features of {len(names)} populations, batch {args.batch}, "
          f"{torch.get_num_threads()} threads, sparse kernel ISA {native.isa_name()}, "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("| strategy | s per call | img/s | ratio to plain | max abs diff | max rel diff |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['strategy']} | {row['seconds']:.3f} | {row['images_per_s']:.1f} | "
              f"{row['ratio']:.2f}x | {row['max_abs_diff']:.1e} | {row['max_rel_diff']:.1e} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"spec": str(args.spec), "batch": args.batch,
                                         "populations": len(names), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
