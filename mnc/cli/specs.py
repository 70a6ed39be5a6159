"""``mnc specs [--json]``: the shipped specs, by the names every command accepts."""

from __future__ import annotations

import argparse
import textwrap

from mnc.cli.common import add_json_flag, human_count, print_json, table

NAME = "specs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List the specs shipped with mnc. Give a name wherever a spec file goes "
        "(`mnc compile mouse`, `extends: tiny`); `mnc init my.yaml --from NAME` starts a "
        "variant of one."
    )
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mnc.catalog import catalog

    entries = catalog()
    if args.json:
        print_json([entry.as_dict() for entry in entries])
        return 0
    print(
        table(
            ["name", "title", "populations", "projections", "parameters", "input"],
            [
                [
                    entry.name,
                    entry.title,
                    entry.populations,
                    entry.projections,
                    human_count(entry.parameters),
                    "x".join(str(size) for size in entry.input_shape),
                ]
                for entry in entries
            ],
        )
    )
    for entry in entries:
        print(f"\n{entry.name}: {entry.path}")
        print(textwrap.fill(entry.description or entry.title, width=92, initial_indent="  ",
                            subsequent_indent="  "))
    return 0
