"""``mnc draw SPEC -o picture.svg``: the architecture as SVG, PNG or PDF."""

from __future__ import annotations

import argparse

from mnc.cli.common import add_spec_argument
from mnc.io.outputs import output_file
from mnc.text import shown

NAME = "draw"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=output_file,
        required=True,
        help="picture to write; the suffix picks the format (.svg, .png, .pdf)",
    )


def run(args: argparse.Namespace) -> int:
    from mnc.compiler import compile_ir
    from mnc.draw import draw
    from mnc.io.outputs import refuse_output_over_inputs

    ir = compile_ir(args.spec)
    refuse_output_over_inputs(args.output, ir.provenance.spec_files)
    draw(ir, args.output)
    print(f"wrote {shown(args.output)}")
    return 0
