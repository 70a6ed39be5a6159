"""``mnc evaluate --split train`` measures the training split (one of its advertised choices)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.torch


def test_evaluate_on_the_train_split(reference_run, capsys):
    from mnc.cli.main import main

    checkpoint = Path(reference_run["run"]) / "last.pt"
    status = main(["evaluate", str(checkpoint), "--split", "train", "--json", "--device", "cpu",
                   "--workers", "0", "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    result = json.loads(captured.out)
    assert result["split"] == "train" and result["images"] > 1000  # digits minus 5 % held out


def test_max_parameters_raises_the_limit_when_loading_a_checkpoint(reference_run, capsys,
                                                                  monkeypatch):
    from mnc.analysis.limits import install_limits
    from mnc.cli.main import main

    checkpoint = Path(reference_run["run"]) / "last.pt"
    flags = ["--device", "cpu", "--workers", "0", "--no-progress", "--json"]
    monkeypatch.setenv("MNC_MAX_PARAMETERS", "1000")
    try:
        assert main(["evaluate", str(checkpoint), *flags]) == 2
        assert "--max-parameters" in capsys.readouterr().err
        assert main(["evaluate", str(checkpoint), *flags, "--max-parameters", "10000000"]) == 0
    finally:
        install_limits(None)
    assert json.loads(capsys.readouterr().out)["split"] == "val"
