"""Train the tiny MouseNet on scikit-learn's digits, evaluate it, and plot its curves.

A minute on a laptop CPU; the same calls train the full network on ImageNet::

    python examples/training_smoke_run.py runs/smoke

is the Python-API version of::

    mnc train tiny --data digits --epochs 3 --max-steps-per-epoch 8 \\
        --batch-size 32 --lr 0.05 --schedule cosine -o runs/smoke
    mnc evaluate runs/smoke/best.pt
    mnc plot runs/smoke
"""

from __future__ import annotations

import sys
from pathlib import Path

from mnc_backends.torch.training import evaluate_checkpoint, plot_run, train


def main(run: Path) -> None:
    summary = train("tiny", run, force=True, overrides={
        "data": "digits", "epochs": 3, "max_steps_per_epoch": 8, "batch_size": 32,
        "lr": 0.05, "schedule": "cosine", "seed": 0})
    print(f"trained {summary['steps']} steps; network {summary['content_hash'][:12]}")
    result = evaluate_checkpoint(run / "best.pt")
    print(f"held-out digits: top-1 {result['top1']:.1%}, top-5 {result['top5']:.1%} "
          f"({result['images']} images; chance is 10 %)")
    print(f"curves: {plot_run(run)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/smoke"))
