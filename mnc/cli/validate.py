"""``mnc validate SPEC``: check a spec and report every problem with file, line and field."""

from __future__ import annotations

import argparse

from mnc.cli.common import add_json_flag, add_spec_argument, print_json

NAME = "validate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mnc.compiler import compile_ir
    from mnc.errors import SpecError

    try:
        ir = compile_ir(args.spec)
    except SpecError as error:
        if not args.json:
            raise
        print_json(
            {
                "spec": args.spec,
                "valid": False,
                "problems": [
                    {
                        "file": problem.location.file,
                        "line": problem.location.line,
                        "column": problem.location.column,
                        "field": problem.field_path,
                        "message": problem.message,
                    }
                    for problem in error.problems
                ],
            }
        )
        return error.exit_code
    if args.json:
        print_json(
            {
                "spec": args.spec,
                "valid": True,
                "name": ir.name,
                "content_hash": ir.content_hash,
                "populations": len(ir.populations),
                "projections": len(ir.projections),
                "notes": ir.provenance.notes,
            }
        )
        return 0
    print(
        f"{args.spec}: valid — {ir.name}: {len(ir.populations)} populations, "
        f"{len(ir.projections)} projections, IR hash {ir.short_hash}"
    )
    for note in ir.provenance.notes:
        print(f"  note: {note}")
    return 0
