"""Cost of a recurrent network per step against the feed-forward network, in one run.

    python benchmarks/bench_recurrent.py [--feed-forward mouse] [--recurrent feedback]
                                         [--batch 8] [--repeats 3] [--threads N] [--json PATH]

Times ``MouseNet.plain_forward`` (one masked convolution per projection, as the IR describes
the network; a recurrent IR unrolled over its steps) of both networks, and with ``--auto``
each network's default forward, in inference (eval mode, ``torch.inference_mode``, float32
CPU), alternately after one warm-up each, so load on a shared machine affects both alike;
the median of the repeats is reported as ms per image and ms per image per step, with the
ratio recurrent / feed-forward. Beside the times: the MACs per step and per image of
``mnc summary`` (``mnc.analysis.cost``; the plain path runs dense convolutions, so the dense
figures predict its time; a projection with delay d computes from step d on, as the plain
path runs it).
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
from mnc.analysis.cost import network_cost
from mnc_backends.torch import MouseNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed-forward", default="mouse", help="spec name or file")
    parser.add_argument("--recurrent", default="feedback", help="spec name or file")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--auto", action="store_true",
                        help="also time each network's default forward (the fastest "
                             "strategy that runs it: sparse for the feed-forward network, "
                             "merged per step for the recurrent one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    specs = {"feed-forward": args.feed_forward, "recurrent": args.recurrent}
    irs = {role: mnc.compile_ir(spec) for role, spec in specs.items()}
    models = {role: MouseNet(ir).eval() for role, ir in irs.items()}
    inputs = {}
    for role, ir in irs.items():
        shape: tuple[int, ...] = (ir.input.channels, ir.input.height, ir.input.width)
        if ir.dynamics.input == "clip":
            shape = (ir.dynamics.steps, *shape)
        inputs[role] = torch.randn(args.batch, *shape,
                                   generator=torch.Generator().manual_seed(0))
    runs = {role: model.plain_forward for role, model in models.items()}
    if args.auto:
        for role, model in models.items():
            runs[f"{role} auto"] = model
    times: dict[str, list[float]] = {role: [] for role in runs}
    with torch.inference_mode():
        for role, run in runs.items():
            run(inputs[role.split(" ")[0]])  # warm-up
        for _ in range(args.repeats):
            for role, run in runs.items():
                start = time.perf_counter()
                run(inputs[role.split(" ")[0]])
                times[role].append(time.perf_counter() - start)

    rows = {}
    for role, ir in irs.items():
        cost = network_cost(ir)
        seconds = statistics.median(times[role])
        steps = ir.dynamics.steps
        per_image_ms = 1000 * seconds / args.batch
        rows[role] = {
            "spec": specs[role], "ir_hash": ir.short_hash, "steps": steps,
            "recurrent_projections": cost.recurrent_projections,
            "seconds_per_call": seconds, "samples": times[role],
            "ms_per_image": per_image_ms, "ms_per_image_per_step": per_image_ms / steps,
            "dense_macs_per_step": cost.dense_macs, "masked_macs_per_step": cost.masked_macs,
            "dense_macs_per_image": cost.dense_macs_total,
            "masked_macs_per_image": cost.masked_macs_total,
            "dense_gmac_per_s": cost.dense_macs_total / (per_image_ms / 1000) / 1e9,
        }
    if args.auto:
        for role in irs:
            seconds = statistics.median(times[f"{role} auto"])
            per_image_ms = 1000 * seconds / args.batch
            rows[f"{role} auto"] = {
                **rows[role], "spec": f"{specs[role]} (auto)", "seconds_per_call": seconds,
                "samples": times[f"{role} auto"], "ms_per_image": per_image_ms,
                "ms_per_image_per_step": per_image_ms / rows[role]["steps"],
                "dense_gmac_per_s": float("nan")}
    forward, recurrent = rows["feed-forward"], rows["recurrent"]
    ratios = {key: recurrent[key] / forward[key] for key in (
        "ms_per_image", "ms_per_image_per_step", "dense_macs_per_step",
        "masked_macs_per_step", "dense_macs_per_image", "masked_macs_per_image")}
    if args.auto:
        forward_auto, recurrent_auto = rows["feed-forward auto"], rows["recurrent auto"]
        for key in ("ms_per_image", "ms_per_image_per_step"):
            ratios[f"{key}_auto"] = recurrent_auto[key] / forward_auto[key]
    result = {"batch": args.batch, "repeats": args.repeats, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "python": platform.python_version(),
              "machine": platform.processor() or platform.machine(),
              "networks": rows, "ratio_recurrent_to_feed_forward": ratios}

    print(f"plain forward (auto: default forward), batch {args.batch}, median of {args.repeats}, "
          f"{torch.get_num_threads()} threads")
    header = (f"{'network':<16} {'steps':>5} {'ms/image':>9} {'ms/image/step':>13} "
              f"{'dense MACs/step':>16} {'masked MACs/step':>17} {'dense GMAC/s':>12}")
    print(header)
    for row in rows.values():
        print(f"{row['spec']:<16} {row['steps']:>5} {row['ms_per_image']:>9.1f} "
              f"{row['ms_per_image_per_step']:>13.1f} {row['dense_macs_per_step'] / 1e9:>15.3g}G "
              f"{row['masked_macs_per_step'] / 1e9:>16.3g}G {row['dense_gmac_per_s']:>12.1f}")
    print("ratio recurrent / feed-forward: " + ", ".join(
        f"{key} {value:.2f}x" for key, value in ratios.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
