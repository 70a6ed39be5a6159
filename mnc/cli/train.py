"""``mnc train SPEC --data DATA -o RUN``: train a compiled network (one GPU, CPU, or DDP).

Multi-GPU and multi-node runs are launched by torchrun, which starts one process per device:
``torchrun --nproc-per-node 8 -m mnc train SPEC --data DATA -o RUN``. Every hyper-parameter
has a flag; ``--config train.yaml`` sets many at once and flags override it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mnc.cli.common import announce, leave_torchrun_world, print_json
from mnc.cli.options import add_limit_flags, install_flag_limits

NAME = "train"
HELP = "train a compiled network on digits, ImageFolder or Downsampled ImageNet data"



def add_hyperparameter_flags(parser: argparse.ArgumentParser,
                             only: tuple[str, ...] | None = None) -> None:
    """A flag per field of the training config (``only``: these fields). Flags default to
    None = "not given", so the YAML config and the built-in recipe apply underneath."""
    from mnc.cli.options import add_model_flags
    from mnc.train_options import TrainConfig

    fields = [name for name in TrainConfig.model_fields if only is None or name in only]
    add_model_flags(parser, TrainConfig, fields, default=None, bounds_while_parsing=False)


def hyperparameter_values(args: argparse.Namespace) -> dict[str, Any]:
    from mnc.cli.options import given_values
    from mnc.train_options import TrainConfig

    return given_values(args, TrainConfig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?",
                        help="spec name or file, e.g. tiny or specs/mouse.yaml (optional with "
                             "--resume)")
    parser.add_argument("-o", "--output", type=Path, help="run folder to create")
    parser.add_argument("--config", type=Path, metavar="YAML",
                        help="training config file; its fields are the flags' names with _")
    parser.add_argument("--resume", type=Path, metavar="RUN",
                        help="continue the run in this folder from its last.pt")
    parser.add_argument("--force", action="store_true",
                        help="start over in a run folder that holds results (deletes them)")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON")
    add_hyperparameter_flags(parser)
    add_limit_flags(parser, sizes=True)


def run(args: argparse.Namespace) -> int:
    return leave_torchrun_world(_train(args))


def _train(args: argparse.Namespace) -> int:
    from mnc_backends.torch.training import train

    install_flag_limits(args)
    summary = train(args.spec, args.output, config_file=args.config,
                    overrides=hyperparameter_values(args), resume=args.resume, force=args.force,
                    announce=lambda line: announce(NAME, line))
    if os.environ.get("RANK", "0") != "0":
        return 0
    if args.json:
        print_json(summary)
        return 0
    final = summary["final"]
    if final:
        print(f"{summary['run']}: {summary['epochs']} epochs, {summary['steps']} steps; "
              f"validation top-1 {final['val_top1']:.2%}, top-5 {final['val_top5']:.2%} "
              f"(best top-1 {summary['best_val_top1']:.2%}, saved in best.pt)")
    else:
        print(f"{summary['run']}: nothing to train (0 epochs)", file=sys.stderr)
    return 0
