"""``mnc init FILE [--from NAME] [--force]``: start a spec that extends another one."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "init"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write a spec that extends a shipped spec (or a spec file) and changes nothing yet, "
        "with commented examples of common edits: a projection's strength and width, "
        "removing an area, the input size, the masks."
    )
    parser.add_argument("output", type=Path, help="the new spec file (.yaml or .yml)")
    parser.add_argument("--from", dest="base", default="mouse", metavar="SPEC",
                        help="shipped spec name (see `mnc specs`) or spec file to extend "
                             "(default: mouse)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    from mnc.catalog import check_output_name, starter_text
    from mnc.compiler import compile_ir
    from mnc.errors import UserFileError
    from mnc.io.atomic import write_text_atomic
    from mnc.io.outputs import refuse_output_over_inputs
    from mnc.spec.loader import read_merged
    from mnc.text import shown

    output: Path = args.output
    check_output_name(output)
    if output.exists() and not args.force:
        raise UserFileError(f"{shown(output)} exists; pass --force to replace it")
    refuse_output_over_inputs(output, read_merged(args.base)[2])  # --force over its own base
    text = starter_text(args.base, output)
    write_text_atomic(output, text)
    ir = compile_ir(output)
    print(f"wrote {shown(output)}: extends {shown(args.base)}, network {ir.short_hash} "
          f"({len(ir.populations)} populations, {len(ir.projections)} projections); "
          f"edit it, then `mnc diff {shown(args.base)} {shown(output)}`")
    return 0
