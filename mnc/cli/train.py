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

from mnc.cli.common import add_limit_flags, announce, install_flag_limits, print_json
from mnc.strategies import STRATEGIES

NAME = "train"
HELP = "train a compiled network on digits, ImageFolder or Downsampled ImageNet data"

# (field of the training config, argparse options). Flags default to None = "not given", so
# the YAML config and the built-in recipe apply underneath. A test keeps this table in step
# with the config model's fields.
Flag = tuple[str, dict[str, Any]]
_ON_OFF = argparse.BooleanOptionalAction
HYPERPARAMETER_FLAGS: tuple[Flag, ...] = (
    ("data", {"help": "'digits' (scikit-learn, offline) or a data folder: ImageFolder "
                      "(train/<class>/*, val/<class>/*) or Downsampled ImageNet batches"}),
    ("format", {"choices": ["auto", "imagefolder", "downsampled-imagenet", "digits"],
                "help": "layout of --data (default: detect)"}),
    ("epochs", {"type": int, "help": "epochs to train (default 90)"}),
    ("batch_size", {"type": int, "help": "global batch size, split over DDP processes "
                                         "(default 256)"}),
    ("lr", {"type": float, "help": "SGD learning rate (default 0.01)"}),
    ("momentum", {"type": float, "help": "SGD momentum (default 0.9)"}),
    ("weight_decay", {"type": float, "help": "SGD weight decay (default 1e-4)"}),
    ("nesterov", {"action": _ON_OFF, "help": "Nesterov momentum (default off)"}),
    ("schedule", {"choices": ["step", "cosine", "constant"],
                  "help": "learning-rate schedule (default step)"}),
    ("lr_step_epochs", {"type": int, "help": "step schedule: epochs between decays (30)"}),
    ("lr_gamma", {"type": float, "help": "step schedule: decay factor (0.1)"}),
    ("warmup_epochs", {"type": int, "help": "linear warm-up epochs from lr/10 (0)"}),
    ("label_smoothing", {"type": float, "help": "cross-entropy label smoothing (0)"}),
    ("grad_clip_norm", {"type": float, "help": "clip the gradient norm (default: no clipping)"}),
    ("crop_scale", {"type": float, "nargs": 2, "metavar": ("LOW", "HIGH"),
                    "help": "random-resized-crop area range (ImageNet 0.08 1; digits 0.6 1)"}),
    ("crop_ratio", {"type": float, "nargs": 2, "metavar": ("LOW", "HIGH"),
                    "help": "random-resized-crop aspect ratio range (0.75 1.333)"}),
    ("hflip", {"action": _ON_OFF, "help": "random horizontal flips (ImageNet on, digits off)"}),
    ("eval_crop_fraction", {"type": float, "help": "evaluation centre-crop fraction (0.875)"}),
    ("mean", {"type": float, "nargs": 3, "metavar": ("R", "G", "B"),
              "help": "normalisation mean (ImageNet's)"}),
    ("std", {"type": float, "nargs": 3, "metavar": ("R", "G", "B"),
             "help": "normalisation standard deviation (ImageNet's)"}),
    ("val_fraction", {"type": float, "help": "digits: held-out share (0.2, fixed split)"}),
    ("device", {"help": "auto (default), cpu, cuda or cuda:N"}),
    ("workers", {"type": int, "help": "data-loader processes per rank (default: automatic)"}),
    ("prefetch_factor", {"type": int, "help": "batches prefetched per worker (4)"}),
    ("amp", {"action": _ON_OFF, "help": "mixed precision (default: on for CUDA)"}),
    ("amp_dtype", {"choices": ["bfloat16", "float16"], "help": "AMP type (bfloat16)"}),
    ("channels_last", {"action": _ON_OFF, "help": "channels_last memory format "
                                                  "(default: on for CUDA)"}),
    ("sync_batchnorm", {"action": _ON_OFF, "help": "synchronise BatchNorm over DDP processes"}),
    ("strategy", {"choices": list(STRATEGIES),
                  "help": "execution strategy: auto (default: on CPU sparse for feed-forward "
                          "and merged for recurrent networks, plain on GPU), plain (one masked "
                          "convolution per projection), merged (one convolution per source "
                          "and stride) or sparse (the kept taps only, CPU float32)"}),
    ("seed", {"type": int, "help": "seed of data order, augmentation and RNGs (0)"}),
    ("deterministic", {"action": _ON_OFF,
                       "help": "deterministic kernels: two runs give identical weights"}),
    ("checkpoint_every_steps", {"type": int, "help": "also write last.pt every N steps (0: "
                                                     "each epoch only)"}),
    ("keep_checkpoints", {"metavar": "LIST",
                          "help": "keep checkpoints along training in RUN/checkpoints/ with "
                                  "their validation top-1 (index checkpoints.json): epochs "
                                  "'0,1,5' (0: untrained), 'every:N', or both '0,every:2'"}),
    ("max_steps_per_epoch", {"type": int, "help": "cap steps per epoch (smoke runs)"}),
    ("progress", {"action": _ON_OFF, "help": "progress bars (default: when on a terminal)"}),
)


def add_hyperparameter_flags(parser: argparse.ArgumentParser,
                             only: tuple[str, ...] | None = None) -> None:
    for field, options in HYPERPARAMETER_FLAGS:
        if only is None or field in only:
            parser.add_argument("--" + field.replace("_", "-"), dest=field, default=None,
                                **options)


def hyperparameter_values(args: argparse.Namespace) -> dict[str, Any]:
    return {field: getattr(args, field) for field, _ in HYPERPARAMETER_FLAGS
            if hasattr(args, field)}


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
