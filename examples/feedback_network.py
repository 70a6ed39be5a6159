"""Run a recurrent connectome: feedback and lateral projections unrolled in time.

    python examples/feedback_network.py [--spec tiny-feedback] [--against tiny]

Lists the delayed projections of the spec, what one step and one image cost against the
feed-forward network, and how VISp's activity changes once feedback arrives (step 0 is the
feed-forward sweep; a delay-1 projection adds its input from step 1 on).
"""

from __future__ import annotations

import argparse

import torch

import mnc
from mnc.analysis.cost import network_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny-feedback",
                        help="recurrent spec name or file (default: tiny-feedback)")
    parser.add_argument("--against", default="tiny",
                        help="feed-forward spec to compare the cost with (default: tiny)")
    parser.add_argument("--population", default="VISp2/3", help="population to follow")
    args = parser.parse_args()

    model = mnc.compile(args.spec, backend="torch").eval()
    ir = model.ir
    steps = ir.dynamics.steps
    readout = list(ir.dynamics.readout_range)
    print(f"{ir.name}: {steps} steps, {ir.dynamics.input} input, readout over steps {readout}")
    for projection in ir.projections:
        if projection.delay:
            upsampled = f", source upsampled x{projection.upsample}" \
                if projection.upsample > 1 else ""
            print(f"  {projection.name:20s} delay {projection.delay}{upsampled}")

    cost, base = network_cost(ir), network_cost(mnc.compile_ir(args.against))
    print(f"\nmasked MACs per step {cost.masked_macs / 1e6:.1f}M, per image "
          f"{cost.masked_macs_total / 1e6:.1f}M; {args.against}: {base.masked_macs / 1e6:.1f}M "
          f"({cost.masked_macs_total / base.masked_macs:.1f}x per image)")

    images = torch.rand(8, ir.input.channels, ir.input.height, ir.input.width)
    with torch.inference_mode():
        logits = model(images)
        activity = model.features(images, [args.population])[args.population]
    print(f"\nlogits {tuple(logits.shape)}; {args.population} per step "
          f"{tuple(activity.shape)} (N, T, C, H, W)")
    first = activity[:, 0]
    for step in range(steps):
        change = (activity[:, step] - first).norm() / first.norm().clamp_min(1e-12)
        print(f"  step {step}: mean activity {activity[:, step].mean():.4f}, change from "
              f"step 0 {change:.1%}")


if __name__ == "__main__":
    main()
