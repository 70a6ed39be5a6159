"""``mnc plot RUN``: loss and accuracy curves of a training run as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnc.io.outputs import output_file

NAME = "plot"
HELP = "plot the loss and accuracy curves of a training run (PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder of mnc train (or its metrics.jsonl)")
    parser.add_argument("-o", "--output", type=output_file,
                        help="PNG file to write (default: RUN/curves.png)")


def run(args: argparse.Namespace) -> int:
    from mnc.extras import require

    require("plot", "mnc plot")
    from mnc_backends.torch.training.plot import plot_run

    print(plot_run(args.run, args.output))
    return 0
