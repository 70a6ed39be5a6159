"""``mnc predict MODEL.onnx IMAGES...``: top-k classes or population features with onnxruntime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mnc.class_names import default_class_names
from mnc.cli.common import announce, positive_number
from mnc.cli.options import add_limit_flags, install_flag_limits
from mnc.errors import UserFileError
from mnc.imaging import find_images
from mnc.io import strict_json
from mnc.io.outputs import output_file, refuse_output_over_inputs
from mnc.text import shown, shown_message

NAME = "predict"
HELP = "run an exported ONNX model on images: top-k classes or population features"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="ONNX model from `mnc compile --backend onnx`")
    parser.add_argument("images", nargs="+", type=Path,
                        help="image files and/or folders (PNG/JPEG, searched recursively)")
    parser.add_argument("--top", type=int, default=None, metavar="K",
                        help="print the K most likely classes per image (default 5 when no "
                             "-o is given)")
    parser.add_argument("--features", default="", metavar="POP[,POP...]",
                        help="population outputs to save with -o (the model must export them: "
                             "`mnc compile --outputs logits,POP`)")
    parser.add_argument("-o", "--output", type=output_file, default=None, metavar="FILE.npz",
                        help="write files, logits and the --features arrays to this .npz")
    parser.add_argument("--batch-size", type=positive_number(int), default=32,
                        help="images per batch (32)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA when onnxruntime can start it, else CPU")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_limit_flags(parser)


def run(args: argparse.Namespace) -> int:
    install_flag_limits(args)
    features = [name.strip() for name in args.features.split(",") if name.strip()]
    top = _top(args, features)
    files = find_images(args.images)
    refuse_output_over_inputs(args.output, [args.model, *files])
    # said before onnx and onnxruntime load (seconds), so a log shows at once what runs
    announce(NAME, f"{args.model} on {len(files)} image(s), device {args.device}")
    from mnc_backends.onnx.runtime import open_model, predict

    model = open_model(args.model, args.device)

    def report_skip(path: Path, reason: str) -> None:
        print(f"skipped {shown_message(reason)}", file=sys.stderr)

    result = predict(model, files, features, batch_size=args.batch_size, on_skip=report_skip)
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable image(s) of {len(files)}",
              file=sys.stderr)
    if args.output is not None:
        _write_npz(args.output, result)
    rows = _ranked(result, model, top) if top else []
    if args.json:
        print(strict_json.dumps({"model": str(args.model), "provider": model.provider,
                                 "predictions": rows,
                                 "output": str(args.output) if args.output else None,
                                 "skipped": [{"file": str(path), "reason": reason}
                                             for path, reason in result.skipped]}, indent=1))
    else:
        for row in rows:
            ranked = ", ".join(f"{entry.get('name', entry['class'])} {entry['probability']:.3f}"
                               for entry in row["top"])
            print(f"{shown(row['file'])}: {shown_message(ranked)}")
    return 0


def _top(args: argparse.Namespace, features: list[str]) -> int:
    """How many classes to list per image (default 5, none when writing -o); the flags that
    go together checked."""
    if features and args.output is None:
        raise UserFileError("--features needs -o FILE.npz to write them to")
    if args.top is not None and args.top < 1:
        raise UserFileError(f"--top must be at least 1, not {args.top}")
    return args.top if args.top is not None else (5 if args.output is None else 0)


def _ranked(result: Any, model: Any, top: int) -> list[dict[str, Any]]:
    """Per image: its ``top`` classes, most probable first, with their names if known."""
    from mnc_backends.onnx.runtime import top_k

    indices, probabilities = top_k(result.logits, top)
    names = model.class_names or default_class_names(result.logits.shape[1])
    return [{"file": str(path), "top": [_entry(int(index), float(chance), names)
                                        for index, chance in zip(row, chances, strict=True)]}
            for path, row, chances in zip(result.files, indices, probabilities, strict=True)]


def _entry(index: int, probability: float, names: list[str] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"class": index, "probability": probability}
    if names is not None and index < len(names):
        entry["name"] = names[index]
    return entry


def _write_npz(path: Path, result: Any) -> None:
    """Atomically (a failed or interrupted run leaves no half-written file); says what it
    wrote."""
    import numpy as np

    from mnc.io.atomic import atomic_open

    arrays = {"files": np.array([str(file) for file in result.files]), "logits": result.logits,
              **result.features}
    with atomic_open(path, "wb") as stream:
        np.savez(stream, **arrays)
    saved = "".join(f", {name} {tuple(value.shape)}" for name, value in result.features.items())
    print(f"wrote {shown(path)}: {len(result.files)} image(s), logits{saved}", file=sys.stderr)
