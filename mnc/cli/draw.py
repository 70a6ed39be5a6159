"""``mnc draw SPEC -o picture.svg``: the architecture as SVG, PNG or PDF."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnc.cli.common import add_spec_argument

NAME = "draw"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="picture to write; the suffix picks the format (.svg, .png, .pdf)",
    )


def run(args: argparse.Namespace) -> int:
    from mnc.compiler import compile_ir
    from mnc.draw import draw

    ir = compile_ir(args.spec)
    draw(ir, args.output)
    print(f"wrote {args.output}")
    return 0
