"""``mnc bench [SPEC] [--quick] [--json FILE]``: throughput of every execution strategy.

Prints one row per (mode, strategy, batch): images per second, the ratio to the
reference-semantics baseline measured in the same run, and the largest output difference.
``--quick`` runs the tiny spec at a small batch with one round (a smoke test, not a figure).
``--device cuda`` times the CUDA path (plain and merged, float32 and bfloat16 autocast).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnc.cli.common import table
from mnc.errors import UserFileError

NAME = "bench"
HELP = "measure throughput of every execution strategy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", default=None,
                        help="spec name or file to benchmark (default: the shipped mouse; "
                             "tiny with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny spec, batch 8, one round: checks that everything runs")
    parser.add_argument("--batch", type=int, default=None,
                        help="the large batch (default 64, 8 with --quick)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed calls per strategy; the median is reported "
                             "(default 3, 1 with --quick)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime comparison")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default) or cuda[:N]; the onnxruntime rows are CPU only")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="also time plain and merged under bfloat16 autocast (rows "
                             "STRATEGY+amp; default: on for cuda)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the results (ratios, rows, machine) as JSON to FILE")


def _spec(given: str | Path | None, quick: bool) -> Path:
    """The spec file to time: the one given, else a shipped spec (found in a wheel too)."""
    from mnc.spec.shipped import spec_file

    return spec_file(given or ("tiny" if quick else "mouse"))


def run(args: argparse.Namespace) -> int:
    from mnc.io.atomic import write_text_atomic
    from mnc_backends.torch.fast.bench import BenchConfig, run_benchmark

    spec = _spec(args.spec, args.quick)
    batch = args.batch if args.batch is not None else (8 if args.quick else 64)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if batch < 1 or rounds < 1:
        raise UserFileError(f"--batch and --rounds must be at least 1 (got {batch}, {rounds})")
    config = BenchConfig(spec=spec, large_batch=batch, rounds=rounds, onnx=not args.no_onnx,
                         device=args.device, amp=args.amp)
    interactive = sys.stderr.isatty()
    result = run_benchmark(config, progress=lambda text: print(f"  {text} ...", file=sys.stderr)
                           if interactive else None)
    print(f"{spec}: {result.summary['machine']}, torch {result.summary['torch_version']}")
    print(table(["mode", "strategy", "batch", "img/s", "ratio", "max abs diff"],
                [[row.mode, row.strategy, row.batch, round(row.images_per_s, 1),
                  f"{row.ratio:.2f}x", f"{row.max_abs_diff:.1e}"] for row in result.rows]))
    summary = result.summary
    print(f"auto picks {summary['auto_eval_strategy']!r} for inference; masked taps keep a zero "
          f"gradient: {summary['masked_taps_zero_gradient']}; onnx: {summary['onnx']}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(result.as_dict(), indent=1) + "\n")
    return 0
