"""`mnc train --strategy merged`: the fast strategy trains, and its checkpoints are ordinary."""

from __future__ import annotations

import json

import pytest

from mnc.cli.main import main
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.torch

# Two small steps and a 5 % validation split: enough to train through the merged strategy and
# compare accuracies; how well the network learns is tests/training/test_training.py's job.
DATA = ["--data", "digits", "--val-fraction", "0.05", "--device", "cpu", "--workers", "0"]


def test_merged_strategy_trains_and_checkpoints_evaluate_identically(tmp_path, capsys):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    assert main(["train", str(TINY_SPEC), *DATA, "--epochs", "1", "--max-steps-per-epoch", "2",
                 "--batch-size", "16", "--lr", "0.05", "--strategy", "merged", "--no-progress",
                 "-o", str(run)]) == 0
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    capsys.readouterr()
    assert main(["evaluate", str(run / "best.pt"), *DATA, "--json"]) == 0
    # the checkpoint holds the plain network's tensors; evaluating it reproduces training's
    # validation accuracy
    assert json.loads(capsys.readouterr().out)["top1"] == pytest.approx(last["val_top1"],
                                                                        abs=1e-9)


def test_sparse_strategy_trains_and_resumes_bit_identically(tmp_path):
    """Training over the kept taps is deterministic: a run stopped by SIGTERM mid-epoch and
    resumed ends with the same weights as one that ran through."""
    torch = pytest.importorskip("torch")
    from mnc_backends.torch.fast import native

    if not native.available():
        pytest.skip(f"sparse kernel not built: {native.unavailable_reason()}")
    from mnc_backends.torch.training import TrainingInterrupted, train
    from tests.training.conftest import train_small
    from tests.training.parts import sigterm_at_batch

    through = train_small(tmp_path / "through", strategy="sparse")
    folder = tmp_path / "stopped"
    with sigterm_at_batch(5), pytest.raises(TrainingInterrupted, match="SIGTERM"):
        train_small(folder, strategy="sparse")
    resumed = train(None, None, resume=folder)
    assert resumed["rank_fingerprints"] == through["rank_fingerprints"]
    assert torch.isfinite(torch.tensor(resumed["final"]["train_loss"]))
