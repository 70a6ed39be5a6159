"""Which model ``mnc rsa`` / ``mnc physiology`` score: a spec's network, a training run's kept
checkpoints (``--weights RUN_DIR``), or any torch module (``--model``, ``--layers``)."""

from __future__ import annotations

import argparse
from typing import Any

from mnc.errors import UsageError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from mnc.cli.common import comma_list

    group = parser.add_argument_group(
        "any torch module instead of a spec (baselines such as VGG16 or AlexNet)")
    group.add_argument("--model", metavar="KIND:NAME",
                       help="torchvision:NAME (e.g. torchvision:vgg16; needs torchvision) or "
                            "module:package.module:factory; --weights is then a state dict "
                            "file (read weights-only) or 'untrained'")
    group.add_argument("--layers", type=comma_list(), action="extend", metavar="NAME,...",
                       help="with --model: module names whose outputs are compared, e.g. "
                            "features.4,features.9 (flattened per image)")
    group.add_argument("--input-size", type=comma_list(int), metavar="H,W",
                       help="with --model: input height,width (default 224,224); images are "
                            "grey, replicated to 3 channels, normalised by --normalize")


def model_from_args(args: argparse.Namespace) -> Any:
    """The LoadedModel the arguments name (not a run folder: see ``is_trajectory``)."""
    from mnc.neuro import model_features

    if args.model:
        from mnc.imaging import IMAGENET_MEAN, IMAGENET_STD
        from mnc.neuro.any_model import load_any_model
        from mnc.neuro.model_features import Preprocess

        if args.spec:
            raise UsageError(f"give a spec ({args.spec}) or --model {args.model}, not both")
        if not args.layers:
            raise UsageError(f"--model {args.model}: give the layers to compare with --layers "
                             f"(e.g. --layers features.4,features.9)")
        size = args.input_size or [224, 224]
        if len(size) not in (1, 2) or min(size) < 1:
            raise UsageError(f"--input-size: expected H,W (positive), got {size}")
        height, width = size[0], size[-1]
        imagenet = args.normalize == "imagenet"
        preprocess = Preprocess(height, width, 3, IMAGENET_MEAN if imagenet else None,
                                IMAGENET_STD if imagenet else None)
        return load_any_model(args.model, args.layers, args.weights, args.seed, preprocess)
    if args.layers or args.input_size:
        raise UsageError("--layers and --input-size go with --model")
    if not args.spec:
        raise UsageError("give the spec whose network to compare (e.g. specs/mouse.yaml), or "
                         "--model KIND:NAME with --layers")
    return model_features.load_model(args.spec, args.weights, args.seed)


def is_trajectory(args: argparse.Namespace) -> bool:
    """Whether ``--weights`` names a run folder with kept checkpoints (checkpoints.json)."""
    from pathlib import Path

    from mnc.errors import UserFileError
    from mnc.io.checkpoint_index import INDEX_JSON
    from mnc.neuro.trajectory import is_run_folder

    if args.model:
        return False
    if Path(args.weights).expanduser().is_dir() and not is_run_folder(args.weights):
        raise UserFileError(f"{args.weights}: a folder without {INDEX_JSON}; give a weights "
                            f"file (e.g. {Path(args.weights) / 'best.pt'}) or a run trained "
                            f"with --keep-checkpoints")
    return is_run_folder(args.weights)


def run_trajectory(kind: str, args: argparse.Namespace, options: Any) -> int:
    """Score every kept checkpoint of the run folder ``--weights``; print what it shows."""
    from mnc.cli.common import print_json, table
    from mnc.cli.neuro_options import neural_source, progress_bar, selection_from_args
    from mnc.neuro.api import records
    from mnc.neuro.trajectory import score_run

    if not args.spec:
        raise UsageError(f"--weights {args.weights} is a training run; give the spec it was "
                         f"trained on")
    report = score_run(args.spec, args.weights, neural_source(args), args.output,
                       args.cache_dir, selection_from_args(args), options, analyses=(kind,),
                       progress=lambda name: progress_bar(name))
    if args.json:
        print_json({"conclusion": report.conclusion,
                    "tests": records(report.tests) if not report.tests.empty else [],
                    "files": report.files})
        return 0
    if kind == "rsa":
        tests = records(report.tests)
        print(table(["region", "kind", "SSM first", "SSM last", "early slope", "late slope",
                     "late 95% interval", "verdict"],
                    [[r["region"], r["kind"], r["ssm_first"], r["ssm_last"],
                      r.get("early_slope"), r.get("late_slope"),
                      _interval(r.get("late_slope_low"), r.get("late_slope_high")),
                      r["verdict"]] for r in tests]))
        print("\nDoes similarity keep rising with task accuracy?")
        for line in report.conclusion.values():
            print(f"  {line}")
    else:
        rows = records(report.physiology[report.physiology["kind"] == "ir_mapped"])
        print(table(["checkpoint", "val top-1", "region", "population", "metric", "KS"],
                    [[r["checkpoint"], r["val_top1"], r["region"], r["population"],
                      r["metric"], r["ks_statistic"]] for r in rows]))
    print(f"\nwrote {len(report.files)} files to {report.output_dir}")
    return 0


def _interval(low: Any, high: Any) -> str | None:
    if low is None or high is None:
        return None
    return f"{low:.3f} to {high:.3f}"
