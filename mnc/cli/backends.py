"""``mnc backends``: the backends found through the ``mnc.backends`` entry points."""

from __future__ import annotations

import argparse

from mnc.cli.common import add_json_flag, print_json, table

NAME = "backends"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mnc.backend import BackendNeedsExtra, available_backends, get_backend
    from mnc.errors import BackendError

    rows = []
    for info in available_backends():
        try:
            backend = get_backend(info.name)
            status, description, suffix = "ok", backend.description, backend.suffix
        except BackendNeedsExtra as error:
            status, description, suffix = f"not installed: {error}", "", ""
        except BackendError as error:
            status, description, suffix = f"broken: {error}", "", ""
        rows.append(
            {
                "name": info.name,
                "target": info.target,
                "package": info.distribution,
                "suffix": suffix,
                "status": status,
                "description": description,
            }
        )
    if args.json:
        print_json(rows)
        return 0
    print(
        table(
            ["backend", "suffix", "package", "status", "description"],
            [
                [row["name"], row["suffix"], row["package"], row["status"], row["description"]]
                for row in rows
            ],
        )
    )
    return 0
