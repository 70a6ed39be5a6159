"""``mnc compile SPEC``: spec -> IR -> backend artifact (PyTorch model, ONNX graph, source)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnc.cli.common import add_limit_flags, add_spec_argument, install_flag_limits
from mnc.io.outputs import output_file

NAME = "compile"


def _backend_names() -> list[str]:
    from mnc.backend import backend_names

    return backend_names()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    parser.add_argument(
        "--backend",
        default="torch",
        choices=_backend_names(),
        help="backend to compile with (see `mnc backends`; default: torch)",
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
        help="comma-separated outputs besides the logits, e.g. logits,VISp5 (ONNX)",
    )
    parser.add_argument("--fp16", action="store_true",
                        help="(onnx) store weights and compute in half precision")
    parser.add_argument("--opset", type=int, help="(onnx) ONNX opset version, 17 or newer")
    parser.add_argument("--merge-convs", action=argparse.BooleanOptionalAction, default=None,
                        help="(onnx) one Conv per source and stride instead of one per "
                             "projection: about 2x faster on onnxruntime's CPU provider "
                             "(default: on, except with --fp16)")
    parser.add_argument("--class-names", type=Path, metavar="FILE",
                        help="(onnx) text file with one class name per line, shown by predict")
    parser.add_argument(
        "--dump-ir",
        type=Path,
        metavar="DIR",
        help="write the IR after every pass into DIR (for debugging a derivation)",
    )
    add_limit_flags(parser, sizes=True)


def run(args: argparse.Namespace) -> int:
    from mnc.backend import BackendOptions, get_backend
    from mnc.compiler import compile_ir
    from mnc.errors import UserFileError
    from mnc.io.atomic import write_text_atomic
    from mnc.io.outputs import refuse_output_over_inputs
    from mnc.ir.serialize import ir_to_json

    ir = compile_ir(args.spec, dump_dir=args.dump_ir, limits=install_flag_limits(args))
    refuse_output_over_inputs(
        args.output, [*ir.provenance.spec_files, args.weights, args.class_names]
    )
    if args.emit == "ir":
        text = ir_to_json(ir)
        if args.output is None:
            sys.stdout.write(text + "\n")
        else:
            write_text_atomic(args.output, text + "\n")
            print(f"wrote IR of {ir.name} ({ir.short_hash}) to {args.output}")
        return 0
    if args.weights is not None and not args.weights.is_file():
        raise UserFileError(f"{args.weights}: no such weights file")
    outputs = tuple(name for name in args.outputs.split(",") if name and name != "logits")
    extra: dict[str, object] = {}
    if args.fp16:
        extra["fp16"] = True
    if args.merge_convs is not None:
        extra["merge_convolutions"] = args.merge_convs
    if args.opset is not None:
        extra["opset"] = args.opset
    if args.class_names is not None:
        extra["class_names"] = _read_class_names(args.class_names)
    options = BackendOptions(
        weights=args.weights,
        outputs=outputs,
        emit=None if args.emit == "model" else args.emit,
        extra=extra,
    )
    backend = get_backend(args.backend)
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
        print(f"wrote {args.output}")
    else:
        print(f"(nothing written; add -o FILE{backend.suffix} to save)")
    return 0


MAX_CLASS_NAMES_BYTES = 4 * 1024 * 1024


def _read_class_names(path: Path) -> list[str]:
    from mnc.errors import UserFileError
    from mnc.io.textfile import TextFileError, read_bounded_text
    from mnc.spec.models import unsafe_character

    try:
        text = read_bounded_text(path, MAX_CLASS_NAMES_BYTES, "class-name file")
    except TextFileError as error:
        raise UserFileError(f"{error.path}: cannot read class names: {error.reason}") from None
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        bad = unsafe_character(name)
        if bad is not None:
            raise UserFileError(f"{path}:{number}: class name holds the control or "
                                f"direction character {bad!r}; expected printable text")
        names.append(name)
    if not names:
        raise UserFileError(f"{path}: expected one class name per line, found none")
    return names
