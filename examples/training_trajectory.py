"""Similarity to (synthetic) mouse visual cortex along training, across seeds, against a baseline.

Trains the tiny MouseNet on digits with 3 seeds, keeping a checkpoint per epoch (epoch 0 is
the untrained network), builds synthetic recordings, scores every checkpoint, tests each
region's trajectory across the seeds (trajectory.csv, trajectory_tests.csv, trajectory.png,
summary.json), and compares the 3 trained instances with 3 instances of a baseline CNN
(instances.csv, comparison.csv, instances.png)::

    python examples/training_trajectory.py --out /tmp/trajectory

The same with the command line and real data (an Allen Brain Observatory cache)::

    mnc train specs/mouse.yaml --data IMAGENET_DIR --keep-checkpoints 0,1,2,5,every:10 -o run
    mnc rsa specs/mouse.yaml --weights run1,run2,run3 --boc-cache ~/allen/boc -o run/rsa
    mnc physiology specs/mouse.yaml --weights run1 --boc-cache ~/allen/boc -o run/physiology
    mnc rsa --model torchvision:vgg16 --layers features.4 features.9 features.16 \\
        --weights vgg16.pth --boc-cache ~/allen/boc -o vgg16

The synthetic cells answer rectified random projections of a coarse (6 x 6) pooling of each
image plus trial noise: a "brain" of luminance detectors. Digit training has no reason to
move a network towards it, so do not read a biological result into this run; it shows the
machinery end to end. The baseline is torchvision's AlexNet when torchvision imports (with
weights from --baseline-weights, else untrained), otherwise a small standard CNN defined here
(untrained), as printed; its instances differ in their random initialisation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "specs" / "variants" / "tiny.yaml"


def small_cnn() -> Any:
    """Three conv-ReLU-pool stages and a linear head: a standard CNN as a baseline."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        nn.Flatten(), nn.Linear(64 * 16, 10))


def baseline(weights: Path | None, seed: int = 0) -> Any:
    import torch

    from mnc.neuro.any_model import load_weights, wrap_module
    from mnc.neuro.model_features import Preprocess

    torch.manual_seed(seed)
    try:
        import torchvision
    except ImportError:
        print("baseline: torchvision is not installed; using a small untrained CNN "
              "(3 conv stages) defined in this example")
        return wrap_module(small_cnn(), ["1", "4", "7"], label="small-cnn",
                           preprocess=Preprocess(64, 64))
    module = torchvision.models.alexnet(weights=None)
    if weights is not None:
        load_weights(module, weights)
    source = f"weights {weights}" if weights else "untrained"
    print(f"baseline: torchvision AlexNet ({source})")
    return wrap_module(module, ["features.1", "features.4", "features.7", "features.11"],
                       label="alexnet", preprocess=Preprocess(112, 112))


def synthetic_recordings(n_images: int, trials: int, seed: int = 0) -> Any:
    """Five regions (VISp Cux2 L2/3 and Rorb L4, VISl Cux2, VISal Rbp4, VISam Cux2)."""
    from mnc.neuro.sources.recordings import NeuralData
    from mnc.neuro.sources.synthetic import synthetic_images, synthetic_rates

    images = synthetic_images(n_images, 46, 59, seed)
    groups = [("VISp", "Cux2-CreERT2", 175), ("VISp", "Rorb-IRES2-Cre", 275),
              ("VISl", "Cux2-CreERT2", 175), ("VISal", "Rbp4-Cre_KL100", 375),
              ("VISam", "Cux2-CreERT2", 175)]
    rng = np.random.default_rng(seed)
    blocks, area, cre, depth, session = [], [], [], [], []
    for index, (name, line, um) in enumerate(groups):
        rates = synthetic_rates(images, 12, seed=seed * 100 + index + 1)
        noisy = rates[:, None, :] + rng.normal(0.0, 0.3, (n_images, trials, rates.shape[1]))
        blocks.append(noisy.astype(np.float32))
        for values, value in ((area, name), (cre, line), (depth, um), (session, str(index))):
            values.extend([value] * rates.shape[1])
    return NeuralData.from_arrays(images, np.concatenate(blocks, axis=2), area, cre_line=cre,
                                  depth_um=depth, session=session, source="synthetic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("training-trajectory"))
    parser.add_argument("--seeds", type=int, default=3, help="training seeds (instances)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per epoch")
    parser.add_argument("--images", type=int, default=40, help="synthetic stimuli")
    parser.add_argument("--baseline-weights", type=Path, help="AlexNet state dict (torchvision)")
    args = parser.parse_args()

    import pandas as pd

    from mnc.neuro.api import AnalysisOptions, run_rsa
    from mnc.neuro.instances import describe, write_outputs
    from mnc.neuro.model_features import load_model
    from mnc.neuro.trajectory import score_runs
    from mnc_backends.torch.training import train

    runs = [args.out / f"seed-{seed}" for seed in range(args.seeds)]
    for seed, run in enumerate(runs):
        train(TINY, run, force=True, overrides={
            "data": "digits", "epochs": args.epochs, "max_steps_per_epoch": args.steps,
            "batch_size": 32, "lr": 0.05, "schedule": "cosine", "val_fraction": 0.06,
            "seed": seed, "device": "cpu", "workers": 0, "progress": False,
            "keep_checkpoints": "0,every:1"})
    recordings = synthetic_recordings(args.images, trials=6)
    options = AnalysisOptions(methods=("spearman",), n_splits=2, regressions=(),
                              max_units=500)
    cache = args.out / "scores" / "cache"
    report = score_runs(TINY, runs, recordings, args.out / "scores", cache, options=options,
                        analyses=("rsa",))

    table = report.trajectory
    shown = table[table["kind"] == "ir_mapped"]
    print("\nSSM (spearman) of the population the IR maps to each region, mean over seeds:")
    print(shown.pivot_table(index="epoch", columns="region", values="ssm").round(3)
          .to_string())
    print("\nDoes similarity keep rising with accuracy? (tested across the seeds)")
    columns = ["region", "kind", "n_seeds", "early_span", "late_span", "late_slope",
               "late_slope_low", "late_slope_high", "verdict"]
    print(report.tests[columns].round(3).to_string(index=False))
    for line in report.conclusion.values():
        print(f"  {line}")

    # Trained MouseNet instances (the last checkpoint of each seed) against baseline instances
    trained = [run_rsa(load_model(TINY, str(sorted((run / "checkpoints").glob("*.pt"))[-1])),
                       recordings, cache_dir=cache, options=options) for run in runs]
    baselines = [run_rsa(baseline(args.baseline_weights, seed), recordings, cache_dir=cache,
                         options=options) for seed in range(args.seeds)]
    label = str(baselines[0].tables["rsa"]["model"].iloc[0])
    tables = write_outputs({"MouseNet (tiny)": trained, label: baselines},
                           args.out / "comparison", "spearman")
    print(f"\nMouseNet (tiny, trained) vs {label}: best-population SSM over instances")
    pd.set_option("display.width", 120)
    for row in tables["comparison"].to_dict(orient="records"):
        print(f"  {describe(row)}")
    print(f"\nwritten: {args.out / 'scores'} and {args.out / 'comparison'}")


if __name__ == "__main__":
    sys.exit(main())
