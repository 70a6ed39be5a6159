"""Time spec -> resolved IR for the shipped specs (imports excluded).

    python benchmarks/bench_compile.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from mnc.compiler import compile_ir

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").rglob("*.yaml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    compile_ir(SPECS[0])  # warm caches (pydantic validators, imports inside passes)
    print(f"machine: {platform.machine()} {platform.processor() or ''} "
          f"Python {platform.python_version()}")
    print(f"{'spec':<32} {'median ms':>10} {'min ms':>8}")
    for spec in SPECS:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            compile_ir(spec)
            times.append((time.perf_counter() - started) * 1000)
        name = str(spec.relative_to(spec.parents[1] if spec.parent.name == "variants"
                                    else spec.parent))
        print(f"{name:<32} {statistics.median(times):>10.1f} {min(times):>8.1f}")


if __name__ == "__main__":
    main()
