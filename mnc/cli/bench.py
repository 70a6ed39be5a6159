"""``mnc bench [SPEC] [--quick] [--json] [-o FILE]``: throughput of every execution strategy.

Prints one row per (mode, strategy, batch): images per second, the ratio to the
reference-semantics baseline measured in the same run, and the largest output difference.
``--quick`` runs the tiny spec at a small batch with one round (a smoke test, not a figure).
``--device cuda`` times the CUDA path (plain and merged, float32 and bfloat16 autocast).
``--max-load LOAD`` first waits for a quiet machine; every row records the load average it ran
at. ``--gradients`` adds each float32 training strategy's gradient error against float64.
``--json`` prints the results as JSON on standard output; ``-o FILE`` also writes them there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mnc.cli.common import announce, positive_number, print_json, table
from mnc.errors import UserFileError
from mnc.io import strict_json
from mnc.io.outputs import output_file
from mnc.text import shown

NAME = "bench"
HELP = "measure throughput of every execution strategy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", default=None,
                        help="spec name or file to benchmark (default: the shipped mouse; "
                             "tiny with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny spec, batch 8, one round: checks that everything runs")
    parser.add_argument("--batch", type=positive_number(int), default=None,
                        help="the large batch (default 64, 8 with --quick)")
    parser.add_argument("--rounds", type=positive_number(int), default=None,
                        help="timed calls per strategy; the median is reported "
                             "(default 3, 1 with --quick)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime comparison")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default) or cuda[:N]; the onnxruntime rows are CPU only")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="also time plain and merged under bfloat16 autocast (rows "
                             "STRATEGY+amp; default: on for cuda)")
    parser.add_argument("--max-load", type=positive_number(float), default=None, metavar="LOAD",
                        help="first wait until the 1-minute load average is at most LOAD "
                             "(up to --wait seconds); every row records the load it ran at")
    parser.add_argument("--wait", type=positive_number(float), default=600.0, metavar="S",
                        help="longest wait for --max-load, in seconds (default 600)")
    parser.add_argument("--gradients", action="store_true",
                        help="also compare each float32 training strategy's gradients with "
                             "plain float64's (worst and median relative error per layer)")
    parser.add_argument("--json", action=_JsonFlag, nargs="?", default=False, metavar="",
                        help="print the results (ratios, rows, machine) as JSON on standard "
                             "output instead of the table")
    parser.add_argument("-o", "--output", type=output_file, default=None, metavar="FILE",
                        help="also write the results as JSON to FILE")


class _JsonFlag(argparse.Action):
    """``--json`` is a flag; the old ``--json FILE`` is refused with the new spelling.

    It takes an optional value only to recognise the old form (a ``.json`` file); any other
    value right after ``--json`` is the spec, as if the flag came after it.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 value: object, option: str | None = None) -> None:
        if isinstance(value, str):
            if Path(value).suffix == ".json" or namespace.spec is not None:
                raise argparse.ArgumentError(
                    self, f"--json takes no file now: it prints JSON on standard output; "
                          f"write a file with -o {value} (--json -o {value} does both)")
            namespace.spec_after_json = Path(value)
        namespace.json = True


def _spec(given: str | Path | None, quick: bool) -> Path:
    """The spec file to time: the one given, else a shipped spec (found in a wheel too)."""
    from mnc.spec.shipped import spec_file

    return spec_file(given or ("tiny" if quick else "mouse"))


def run(args: argparse.Namespace) -> int:
    from mnc.io.atomic import write_text_atomic
    from mnc.io.outputs import refuse_output_over_inputs
    from mnc.progress import interactive
    from mnc.spec.loader import read_merged
    from mnc_backends.torch.fast.bench import BenchConfig, run_benchmark

    spec = _spec(args.spec or getattr(args, "spec_after_json", None), args.quick)
    batch = args.batch if args.batch is not None else (8 if args.quick else 64)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if batch < 1 or rounds < 1:
        raise UserFileError(f"--batch and --rounds must be at least 1 (got {batch}, {rounds})")
    refuse_output_over_inputs(args.output, read_merged(spec)[2])  # before minutes of timing
    _check_work(spec, batch, rounds)
    config = BenchConfig(spec=spec, large_batch=batch, rounds=rounds, onnx=not args.no_onnx,
                         device=args.device, amp=args.amp, max_load=args.max_load,
                         wait_s=args.wait, gradients=args.gradients,
                         gradient_batch=min(batch, 8))
    announce(NAME, f"timing every strategy on {spec}: batches 1 and {batch}, {rounds} "
                   f"round(s) each, device {args.device}"
                   f"{'' if args.no_onnx else ', onnxruntime too'}")
    watched = interactive()
    result = run_benchmark(config, progress=lambda text: print(f"  {text} ...", file=sys.stderr)
                           if watched else None)
    if args.output is not None:
        write_text_atomic(args.output, strict_json.dumps(result.as_dict(), indent=1) + "\n")
    if args.json:
        print_json(result.as_dict())
        return 0
    _print_result(spec, result)
    if args.output is not None:
        print(f"wrote {shown(args.output)}")
    return 0


def _print_result(spec: Path, result: Any) -> None:
    """The timing table, the gradients' errors, how near the machine's limit sparse runs,
    and what auto picks."""
    print(f"{shown(spec)}: {result.summary['machine']}, torch {result.summary['torch_version']}")
    print(table(["mode", "strategy", "batch", "img/s", "ratio", "max abs diff", "load"],
                [[row.mode, row.strategy, row.batch, round(row.images_per_s, 1),
                  f"{row.ratio:.2f}x", f"{row.max_abs_diff:.1e}", row.load]
                 for row in result.rows]))
    if result.gradients:
        print("float32 gradients against plain float64 (relative error per layer):")
        print(table(["strategy", "worst", "worst layer", "median", "worst / plain's"],
                    [[row.strategy, f"{row.worst:.2e}", row.worst_parameter,
                      f"{row.median:.2e}", f"{row.ratio_to_plain:.3g}x"]
                     for row in result.gradients]))
    summary = result.summary
    if "kept_macs_per_image" in summary:
        fractions = ", ".join(f"{key.split('_')[1]} {value:.1%}" for key, value in summary.items()
                              if key.endswith("_fraction_of_machine"))
        print(f"physical limit: {summary['kept_macs_per_image'] / 1e9:.3f} G kept MACs per "
              f"image, machine {summary['machine_macs_per_s'] / 1e9:.1f} G MAC/s "
              f"({summary['machine_macs_per_s_threads']} threads); sparse reaches "
              f"{fractions or 'n/a'}")
    print(f"auto picks {summary['auto_eval_strategy']!r} for inference; masked taps keep a zero "
          f"gradient: {summary['masked_taps_zero_gradient']}; onnx: {summary['onnx']}")
    _print_passed_over(summary)


def _print_passed_over(summary: dict[str, Any]) -> None:
    """Why ``auto`` runs neither of the strategies it prefers to the one it picked."""
    for mode in ("eval", "train"):
        for strategy, why in summary.get(f"auto_{mode}_passed_over", {}).items():
            print(f"  auto ({'inference' if mode == 'eval' else 'training'}) passes over "
                  f"{strategy!r}: {why}")


def _check_work(spec: str | Path, batch: int, rounds: int) -> None:
    """Refuse before timing a network whose images ask for more work than the limit (a
    recurrent network of many steps runs every step on every image)."""
    from mnc.analysis.cost import network_cost
    from mnc.analysis.limits import work_problem
    from mnc.compiler import compile_ir
    from mnc.errors import SizeLimitError

    ir = compile_ir(spec)
    problem = work_problem(f"{shown(spec)} ({ir.dynamics.steps} step(s))",
                           network_cost(ir).dense_macs_total)
    if problem is not None:
        raise SizeLimitError(f"{problem}; mnc bench runs batches of 1 and {batch}, {rounds} "
                             "round(s) each")
