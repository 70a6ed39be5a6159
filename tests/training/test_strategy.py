"""`mnc train --strategy merged`: the fast strategy trains, and its checkpoints are ordinary."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY_SPEC, run_mnc

pytestmark = pytest.mark.torch


def test_merged_strategy_trains_and_checkpoints_evaluate_identically(tmp_path):
    run = tmp_path / "run"
    result = run_mnc("train", str(TINY_SPEC), "--data", "digits", "--epochs", "1",
                     "--max-steps-per-epoch", "4", "--batch-size", "32", "--lr", "0.05",
                     "--strategy", "merged", "-o", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    evaluated = run_mnc("evaluate", str(run / "best.pt"), "--data", "digits", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    # the checkpoint holds the plain network's tensors; evaluating it reproduces training's
    # validation accuracy
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(last["val_top1"], abs=1e-9)
