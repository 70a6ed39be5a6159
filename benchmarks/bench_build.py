"""Time spec -> ready torch module (imports, including torch's lazily loaded parts, excluded).

    python benchmarks/bench_build.py [SPEC] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import mnc
from mnc_backends.torch.module import MouseNet

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "specs" / "mouse.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    MouseNet(mnc.compile_ir(args.spec))  # first build pays one-off lazy imports inside torch
    ir_times, build_times = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        ir = mnc.compile_ir(args.spec)
        compiled = time.perf_counter()
        model = MouseNet(ir)
        with torch.no_grad():
            model.eval()(torch.zeros(1, ir.input.channels, ir.input.height, ir.input.width))
        built = time.perf_counter()
        ir_times.append(compiled - started)
        build_times.append(built - compiled)
    total = [a + b for a, b in zip(ir_times, build_times, strict=True)]
    print(f"spec -> IR          median {1000 * statistics.median(ir_times):7.1f} ms")
    print(f"IR -> module + 1 fwd median {1000 * statistics.median(build_times):7.1f} ms")
    print(f"spec -> ready module median {1000 * statistics.median(total):7.1f} ms")


if __name__ == "__main__":
    main()
