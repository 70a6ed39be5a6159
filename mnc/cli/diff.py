"""``mnc diff A.yaml B.yaml``: what changes in the network between two specs."""

from __future__ import annotations

import argparse

from mnc.cli.common import add_json_flag, print_json

NAME = "diff"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("left", help="first spec (YAML)")
    parser.add_argument("right", help="second spec (YAML)")
    parser.add_argument("--exit-code", action="store_true",
                        help="exit with status 1 when the networks differ, 0 when they are "
                             "the same (as git diff --exit-code)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mnc.compiler import compile_ir
    from mnc.diff import diff_ir, render_diff

    difference = diff_ir(compile_ir(args.left), compile_ir(args.right))
    if args.json:
        print_json(difference)
    else:
        print(render_diff(difference))
    return 1 if args.exit_code and not difference["identical"] else 0
