"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mnc.text import format_bytes, human_count, shown_message  # noqa: F401 - importable from here as before


def add_spec_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec", help="shipped spec name (mouse, tiny, ...: `mnc specs`) or spec file (YAML)"
    )


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of a table"
    )


def announce(command: str, text: str) -> None:
    """One line on stderr saying what a long command is about to do, before it does it.

    Printed whether or not stderr is a terminal, so a log file shows what ran and with what;
    under torchrun only the main process (rank 0) prints.
    """
    if os.environ.get("RANK", "0") == "0":
        print(f"mnc {command}: {shown_message(text)}", file=sys.stderr, flush=True)


def comma_list(item: Callable[[str], Any] = str, choices: Sequence[str] | None = None
               ) -> Callable[[str], list[Any]]:
    """argparse type for ``--opt A,B,C``: one value per flag, so a positional after it is never
    taken as another item. Use with ``action="extend"`` so that repeating the flag adds more.
    """

    def parse(text: str) -> list[Any]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, not {text!r}")
        if choices is not None:
            unknown = [name for name in names if name not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"{unknown[0]!r} is not one of {', '.join(choices)}")
        try:
            return [item(name) for name in names]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected numbers, not {text!r}") from None

    return parse


def positive_number(kind: type = float, zero_allowed: bool = False) -> Callable[[str], Any]:
    """argparse type for a limit: a finite number above zero (0, nan and inf refused);
    ``zero_allowed``: zero is accepted too (a seed, a baseline of 0 s)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, not {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
            least = "zero or more" if zero_allowed else "a positive number"
            raise argparse.ArgumentTypeError(f"expected {least}, not {text!r}")
        return value

    return parse


def leave_torchrun_world(code: int) -> int:
    """End this process at once with ``code`` (output flushed) when it is one rank of a
    torchrun world of several processes; elsewhere return ``code``.

    The command has left its process group by then, yet torch keeps gloo's worker threads
    until the interpreter exits. A worker still releasing the tensors of the last collective
    then needs an interpreter that is being torn down, and the rank aborted ("terminate called
    without an active exception") now and then on a busy machine, after every file was
    written. ``os._exit`` skips that teardown.
    """
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return code
    if world_size <= 1:
        return code
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def print_json(data: Any) -> None:
    """Strict JSON on stdout: NaN and infinity are printed as null."""
    from mnc.io.strict_json import dumps

    sys.stdout.write(dumps(data, indent=1))
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table; numbers right-aligned, text left-aligned."""
    cells = [[str(value) for value in headers]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    numeric = [
        all(_is_number(row[column]) for row in rows) if rows else False
        for column in range(len(headers))
    ]
    lines = []
    for index, row in enumerate(cells):
        parts = [
            value.rjust(width) if numeric[column] and index else value.ljust(width)
            for column, (value, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    return str(value)


human_bytes = format_bytes
