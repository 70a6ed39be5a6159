"""Entry point of the ``mnc`` command.

Each command lives in its own module of ``mnc.cli`` with ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Commands are listed here explicitly (no
discovery by import side effects) and imported lazily, so ``mnc validate`` never pays for
torch.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

from mnc.errors import MncError, StoppedByRequest
from mnc.extras import missing_extra
from mnc.text import shown, shown_message

# (module, help) in the order --help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("mnc.cli.validate", "check a spec and report every problem with its location"),
    "compile": ("mnc.cli.compile", "compile a spec to IR, a PyTorch model or an ONNX graph"),
    "summary": ("mnc.cli.summary", "table of populations and projections with sizes and costs"),
    "explain": (
        "mnc.cli.explain",
        "show how every number of a population or projection was derived",
    ),
    "diff": ("mnc.cli.diff", "compare the networks two specs compile to"),
    "draw": ("mnc.cli.draw", "draw the architecture as SVG or PNG"),
    "backends": ("mnc.cli.backends", "list the backends found, built-in and installed"),
    "specs": ("mnc.cli.specs", "list the shipped specs (mouse, tiny, ...) with their sizes"),
    "init": ("mnc.cli.init", "write a new spec that extends a shipped one, ready to edit"),
    "predict": ("mnc.cli.predict", "run an exported ONNX model on image files"),
    "train": ("mnc.cli.train", "train a compiled network (single process or torchrun)"),
    "evaluate": ("mnc.cli.evaluate", "top-1 / top-5 accuracy of a checkpoint on a dataset"),
    "plot": ("mnc.cli.plot", "plot the loss and accuracy curves of a training run"),
    "bench": ("mnc.cli.bench", "measure throughput of every execution strategy"),
    "rsa": ("mnc.cli.rsa", "representational similarity against Allen Brain Observatory data"),
    "physiology": (
        "mnc.cli.physiology",
        "compare response statistics of model units and recorded cells",
    ),
    "measure": ("mnc.cli.measure", "derive spec measurements from the voxel-scale connectome"),
    "completion": ("mnc.cli.completion", "print a shell completion script (bash, zsh or fish)"),
}


COMMAND_PARSERS: dict[str, argparse.ArgumentParser] = {}
"""Each command's parser, from the last ``build_parser``: a bad flag gets its usage."""

EXIT_STATUSES = {0: "success", 1: "`mnc diff --exit-code`: the networks differ",
                 2: "usage error: a bad flag or argument, or a file or value that cannot be used",
                 3: "invalid spec: the spec cannot be read or describes no valid network",
                 130: "stopped by SIGINT (Ctrl-C)", 143: "stopped by SIGTERM"}
"""What each exit status of ``mnc`` means (README, ``mnc --help``)."""


def build_parser(
    selected: str | None = None, argv: Sequence[str] = ()
) -> argparse.ArgumentParser:
    """The parser; only the ``selected`` command's module is imported for its arguments.

    A command whose flags depend on other flags (``compile``: the backend's options) adds
    them in ``extend_arguments(parser, argv)``."""
    parser = argparse.ArgumentParser(
        prog="mnc",
        description="MouseNet compiler: anatomical measurements (YAML) -> validated IR -> "
        "trainable networks.",
        epilog="exit statuses: " + "; ".join(f"{code} {meaning}"
                                             for code, meaning in EXIT_STATUSES.items()),
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the full traceback of errors (for bug reports)"
    )
    from mnc import __version__

    parser.add_argument("--version", action="version", version=f"mnc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        # also after the command; SUPPRESS keeps a --verbose given before it
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback of errors (for bug reports)")
        COMMAND_PARSERS[name] = sub
        if name == selected:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            if hasattr(module, "extend_arguments"):
                module.extend_arguments(sub, list(argv))
    return parser


def _selected_command(argv: Sequence[str]) -> str | None:
    for token in argv:
        if token in COMMANDS:
            return token
        if not token.startswith("-"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_selected_command(argv), argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own usage, not the top-level one
        command = COMMAND_PARSERS.get(getattr(args, "command", None) or "", parser)
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    # SIGTERM unwinds like Ctrl-C, so atomic writers remove their temporary files and
    # training loops can checkpoint before exiting.
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    from mnc.analysis.limits import install_limits

    install_limits(None, frozenset())  # limit messages name only flags this command has
    try:
        return _run(module, args)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        limits = sys.modules.get("mnc.analysis.limits")
        if limits is not None:  # a command's limit flags end with the command
            limits.install_limits(None)


def _run(module: Any, args: argparse.Namespace) -> int:
    """The command's exit status; each way it can fail is one line on stderr (``--verbose``:
    the traceback of mnc's own errors). A flat list of the failures a user may meet."""
    try:
        return int(module.run(args) or 0)
    except StoppedByRequest as stop:  # asked for, so no "error:"; the message says "stopped"
        print(f"mnc {args.command}: {shown_message(str(stop))}", file=sys.stderr)
        return stop.exit_code
    except MncError as error:
        if args.verbose:
            raise
        # every message, whatever built it, reaches the terminal without escape sequences
        print(f"mnc {args.command}: error: {shown_message(str(error))}", file=sys.stderr)
        return error.exit_code
    except ModuleNotFoundError as missing:  # an optional package: name its extra
        needed = missing_extra(missing, args.command)
        if needed is None or args.verbose:
            raise
        print(f"mnc {args.command}: error: {needed}", file=sys.stderr)
        return needed.exit_code
    except KeyboardInterrupt as interrupt:
        return _stopped_by_signal(args.command, interrupt)
    except BrokenPipeError:
        return 0
    except OSError as error:  # last resort: write sites name their file themselves
        if args.verbose:
            raise
        where = f"{shown(str(error.filename))}: " if error.filename else ""
        print(f"mnc {args.command}: error: {where}{shown_message(str(error.strerror or error))}",
              file=sys.stderr)
        return 2


def _stopped_by_signal(command: str, interrupt: KeyboardInterrupt) -> int:
    terminated = isinstance(interrupt, _Terminated)
    print(f"mnc {command}: stopped by {'SIGTERM' if terminated else 'SIGINT'}", file=sys.stderr)
    return 143 if terminated else 130


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C (exit status 143 instead of 130)."""


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise _Terminated(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
