"""``mnc compile SPEC``: spec -> IR -> backend artifact (PyTorch model, ONNX graph, source)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mnc.cli.common import add_spec_argument
from mnc.cli.options import add_limit_flags, install_flag_limits
from mnc.io.outputs import output_file
from mnc.text import shown

NAME = "compile"
DEFAULT_BACKEND = "torch"


def _backend_names() -> list[str]:
    from mnc.backend import backend_names

    return backend_names()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    parser.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        choices=_backend_names(),
        help="backend to compile with (see `mnc backends`; default: torch); "
        "`mnc compile --backend NAME --help` lists that backend's options",
    )
    parser.add_argument(
        "--emit",
        choices=["model", "ir", "python"],
        default="model",
        help="what to produce: the backend's model (default), the IR as JSON, "
        "or (torch) readable PyTorch source",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=output_file,
        help="file to write; without it the network is built and described, "
        "and --emit ir prints the IR",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        help="saved model or training checkpoint (.pt) to take the weights from",
    )
    parser.add_argument(
        "--outputs",
        default="",
        help="comma-separated outputs besides the logits, e.g. logits,VISp5",
    )
    parser.add_argument(
        "--dump-ir",
        type=Path,
        metavar="DIR",
        help="write the IR after every pass into DIR (for debugging a derivation)",
    )
    add_limit_flags(parser, sizes=True)


def extend_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Add the flags of the backend that ``argv`` names (its ``options_model``; imported only
    now). Without ``--backend``, flags the core does not know are looked up in the default
    backend, then in the others, so they are recognised and ``run`` can say whose they are."""
    from mnc.backend import backend_class, backend_names
    from mnc.cli.backend_options import add_backend_flags
    from mnc.errors import MncError

    named = _named_backend(argv)
    if named is not None and named not in backend_names():
        return  # --backend's choices say so
    if named is not None:
        candidates = [named]
    else:
        known = {text for action in parser._actions for text in action.option_strings}
        unknown = [token for token in argv
                   if token.startswith("--") and token.split("=", 1)[0] not in known]
        if not unknown:
            return
        candidates = [DEFAULT_BACKEND, *(n for n in backend_names() if n != DEFAULT_BACKEND)]
    for name in candidates:
        try:
            model = backend_class(name).options_model
        except MncError as error:
            if named is not None:  # the message of any other run that lacks the extra
                parser.exit(2, f"{parser.prog}: error: {error}\n")
            continue  # an uninstalled backend has no flags to offer
        add_backend_flags(parser, name, model)


def _named_backend(argv: list[str]) -> str | None:
    for index, token in enumerate(argv):
        if token == "--backend" and index + 1 < len(argv):
            return argv[index + 1]
        if token.startswith("--backend="):
            return token.split("=", 1)[1]
    return None


def _write_ir(ir: Any, output: Path | None) -> int:
    """``--emit ir``: the IR's JSON to -o FILE, or to standard output."""
    from mnc.io.atomic import write_text_atomic
    from mnc.ir.serialize import ir_to_json

    text = ir_to_json(ir)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        write_text_atomic(output, text + "\n")
        print(f"wrote IR of {ir.name} ({ir.short_hash}) to {shown(output)}")
    return 0


def _refuse_foreign_options(args: argparse.Namespace) -> None:
    """An option of another backend than --backend's is named, with the --backend it needs."""
    from mnc.backend import backend_class
    from mnc.cli import backend_options
    from mnc.errors import UsageError

    foreign = backend_options.foreign_options(args, args.backend)
    if foreign:
        owner, field = foreign[0]
        fields = backend_class(owner).options_model.model_fields
        spelled = backend_options.flag(field, fields[field])
        raise UsageError(f"{spelled} is an option of the {owner} backend, not of "
                         f"{args.backend}; add --backend {owner}")


def run(args: argparse.Namespace) -> int:
    from mnc.backend import BackendOptions, get_backend
    from mnc.cli import backend_options
    from mnc.compiler import compile_ir
    from mnc.errors import UserFileError
    from mnc.io.outputs import refuse_output_over_inputs

    ir = compile_ir(args.spec, dump_dir=args.dump_ir, limits=install_flag_limits(args))
    given = backend_options.given_options(args, args.backend)
    files = [value for key, value in vars(args).items()
             if key.startswith(backend_options.DEST_PREFIX) and isinstance(value, Path)]
    refuse_output_over_inputs(args.output, [*ir.provenance.spec_files, args.weights, *files])
    if args.emit == "ir":
        return _write_ir(ir, args.output)
    if args.weights is not None and not args.weights.is_file():
        raise UserFileError(f"{args.weights}: no such weights file")
    outputs = tuple(name for name in args.outputs.split(",") if name and name != "logits")
    _refuse_foreign_options(args)
    backend = get_backend(args.backend)
    options = BackendOptions(
        weights=args.weights,
        outputs=outputs,
        emit=None if args.emit == "model" else args.emit,
        extra=backend_options.validate(backend.options_model, given, backend.name),
    )
    if options.emit is not None and options.emit not in backend.emits:
        raise UserFileError(
            f"backend {backend.name!r} cannot emit {options.emit!r}; it emits: "
            f"{', '.join(backend.emits) or 'its model only'}"
        )
    artifact = backend.compile(ir, options)
    print(
        f"{ir.name}: {len(ir.populations)} populations, {len(ir.projections)} projections, "
        f"IR hash {ir.short_hash}"
    )
    print(f"{backend.name}: {backend.describe(artifact)}")
    if args.output is not None:
        backend.save(artifact, args.output, options)
        print(f"wrote {shown(args.output)}")
    else:
        print(f"(nothing written; add -o FILE{backend.suffix} to save)")
    return 0

