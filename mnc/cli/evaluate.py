"""``mnc evaluate CHECKPOINT --data DATA``: top-1 / top-5 accuracy and loss on a split."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnc.cli.common import announce, leave_torchrun_world, print_json
from mnc.cli.options import add_limit_flags, install_flag_limits
from mnc.cli.train import add_hyperparameter_flags, hyperparameter_values
from mnc.text import shown

NAME = "evaluate"
HELP = "top-1 / top-5 accuracy of a checkpoint or saved model on a data set"

_EVALUATION_FLAGS = ("data", "format", "batch_size", "device", "workers", "prefetch_factor",
                     "amp", "amp_dtype", "channels_last", "eval_crop_fraction", "mean", "std",
                     "val_fraction", "progress")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path,
                        help="training checkpoint (best.pt, last.pt) or saved model (.pt)")
    parser.add_argument("--split", choices=["val", "train"], default="val",
                        help="which split to measure (default val)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_hyperparameter_flags(parser, only=_EVALUATION_FLAGS)
    add_limit_flags(parser, sizes=True)


def run(args: argparse.Namespace) -> int:
    return leave_torchrun_world(_evaluate(args))


def _evaluate(args: argparse.Namespace) -> int:
    from mnc_backends.torch.training import evaluate_checkpoint

    install_flag_limits(args)
    values = hyperparameter_values(args)
    data = values["data"] or "the data of its training config"
    announce(NAME, f"{args.checkpoint} on the {args.split} split of {data}, device "
                   f"{values['device'] or 'auto'}")
    result = evaluate_checkpoint(args.checkpoint, values, split=args.split)
    if os.environ.get("RANK", "0") != "0":
        return 0
    if args.json:
        print_json(result)
    else:
        print(f"{shown(result['checkpoint'])} on {shown(result['data'])} ({result['split']}, "
              f"{result['images']} images): top-1 {result['top1']:.2%}  "
              f"top-5 {result['top5']:.2%}  loss {result['loss']:.4f}")
        if result.get("skipped_images"):
            print(f"skipped {result['skipped_images']} unreadable image(s)", file=sys.stderr)
    return 0
