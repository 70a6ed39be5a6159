"""Upsampled convolutions in ONNX: sub-pixel phases + DepthToSpace against Resize + Conv.

    python benchmarks/bench_onnx_upsample.py [--spec feedback] [--batch 2] [--repeats 3]
                                             [--threads 1]

Exports the spec twice with the same fresh weights: as mnc does (an upsampled stride-1 group
is a Conv over the coarse source per sub-pixel phase, then DepthToSpace;
``mnc.lowering.merged.SubpixelSplit``) and with that split turned off (a nearest Resize of
the source, then the box Conv). Both run in onnxruntime's CPU provider, alternately after one
warm-up each, timed in process CPU time so load on a shared machine affects both alike; the
minimum of the repeats is reported, with the max abs difference of the logits.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np
import onnxruntime as ort

import mnc
from mnc.backend import BackendOptions
from mnc.lowering.merged import MergedGroup
from mnc_backends.onnx import OnnxBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="feedback", help="spec name or file")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    ir = mnc.compile_ir(args.spec)
    models = {"subpixel": OnnxBackend().compile(ir, BackendOptions())}
    with mock.patch.object(MergedGroup, "subpixel", lambda self, height, width: None):
        models["resize"] = OnnxBackend().compile(ir, BackendOptions())
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = args.threads
    sessions = {name: ort.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
                for name, model in models.items()}
    shape = (args.batch, ir.input.channels, ir.input.height, ir.input.width)
    images = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    logits = {name: session.run(["logits"], {"image": images})[0]
              for name, session in sessions.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.repeats):
        for name, session in sessions.items():
            start = time.process_time()
            session.run(["logits"], {"image": images})
            times[name].append(time.process_time() - start)
    best = {name: min(values) for name, values in times.items()}
    print(f"{ir.name}, batch {args.batch}, {args.threads} thread(s), CPU s per batch (min of "
          f"{args.repeats}):")
    for name, seconds in best.items():
        print(f"  {name:9s} {seconds:.3f} s  ({seconds / best['resize']:.2f}x resize)")
    difference = float(np.abs(logits["subpixel"] - logits["resize"]).max())
    scale = float(np.abs(logits["resize"]).max())
    print(f"  max abs logit difference {difference:.2e} (largest logit {scale:.3g})")


if __name__ == "__main__":
    main()
