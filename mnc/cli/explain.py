"""``mnc explain SPEC NAME``: the derivation chain of a population or projection."""

from __future__ import annotations

import argparse

from mnc.cli.common import add_json_flag, add_spec_argument, print_json

NAME = "explain"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    parser.add_argument("name", help='a population ("VISpor4") or projection ("VISp2/3->VISl4")')
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mnc.compiler import compile_ir
    from mnc.explain import explain, render_explanation

    explanation = explain(compile_ir(args.spec), args.name)
    if args.json:
        print_json(explanation)
    else:
        print(render_explanation(explanation))
    return 0
