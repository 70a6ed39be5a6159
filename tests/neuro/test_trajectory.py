"""Similarity along training: the plateau test, and every kept checkpoint of a run scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")

import pandas as pd

from mnc.cli.main import main
from mnc.neuro.recording_files import save_recordings
from mnc.neuro.trajectory import TRAJECTORY_COLUMNS, plateau_test, score_run
from tests.conftest import TINY_SPEC
from tests.neuro.small_models import small_recordings

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.neuro
ACCURACY = np.array([0.1, 0.3, 0.5, 0.7, 0.8, 0.9])


def _draws(ssm: np.ndarray, spread: float = 0.005, count: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    return ssm[None, :] + rng.normal(0.0, spread, (count, ssm.size))


def test_plateau_test_tells_rising_from_levelling_off() -> None:
    rising = 0.1 + 0.4 * ACCURACY
    assert plateau_test(ACCURACY, rising, _draws(rising))["verdict"] == "keeps rising"
    plateau = np.array([0.1, 0.2, 0.3, 0.31, 0.30, 0.31])
    result = plateau_test(ACCURACY, plateau, _draws(plateau))
    assert result["verdict"] == "levels off", result
    assert result["early_slope"] > 0.4 and abs(result["late_slope"]) < 0.1
    falling = np.array([0.1, 0.2, 0.3, 0.25, 0.2, 0.15])
    assert plateau_test(ACCURACY, falling, _draws(falling))["verdict"] == "falls"
    drop = np.array([0.3, 0.2, 0.1, 0.1, 0.11, 0.1])
    assert plateau_test(ACCURACY, drop, _draws(drop))["verdict"] == "falls, then levels off"
    noisy = plateau_test(ACCURACY, plateau, _draws(plateau, spread=0.5))
    assert noisy["verdict"] == "inconclusive"
    assert plateau_test(ACCURACY[:3], plateau[:3], None)["verdict"].startswith("not tested")
    flat_accuracy = np.array([0.1, 0.5, 0.9, 0.9, 0.9, 0.9])
    assert "differ by less" in plateau_test(flat_accuracy, plateau, _draws(plateau))["verdict"]


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mnc_backends.torch.training import train

    folder = tmp_path_factory.mktemp("trajectory") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TINY_SPEC, folder, overrides={
            "data": "digits", "epochs": 3, "batch_size": 16, "max_steps_per_epoch": 2,
            "lr": 0.05, "val_fraction": 0.05, "device": "cpu", "workers": 0, "seed": 3,
            "progress": False, "keep_checkpoints": "0,every:1"})
    finally:
        torch.set_num_threads(before)
    return folder


def test_rsa_and_physiology_score_every_kept_checkpoint(kept_run: Path, tmp_path: Path,
                                                        capsys: Any) -> None:
    recordings = tmp_path / "rec.npz"
    save_recordings(small_recordings(), recordings)
    common = [str(TINY_SPEC), "--weights", str(kept_run), "--recordings", str(recordings),
              "--splits", "2"]
    status = main(["rsa", *common, "--bootstrap", "5", "--regressions", "none", "--methods",
                   "spearman", "-o", str(tmp_path / "rsa")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "Does similarity keep rising with task accuracy?" in out
    table = pd.read_csv(tmp_path / "rsa" / "trajectory.csv")
    assert list(table.columns) == list(TRAJECTORY_COLUMNS)
    index = json.loads((kept_run / "checkpoints.json").read_text())
    assert sorted(set(table["epoch"])) == [0, 1, 2, 3]
    for entry in index:
        rows = table[table["epoch"] == entry["epoch"]]
        assert len(rows) == 3 * 2  # regions x kinds (every region has an IR population)
        assert np.allclose(rows["val_top1"], entry["val_top1"], atol=1e-5)
    mapped = table[table["kind"] == "ir_mapped"]
    assert set(zip(mapped["region"], mapped["population"], strict=True)) == {
        ("VISp Cux2 L2/3", "VISp2/3"), ("VISp Rorb L4", "VISp4"), ("VISl Cux2 L2/3", "VISl2/3")}
    assert (table["ssm_low"] <= table["ssm"] + 1e-9).all()
    assert (table["ceiling_low"] <= table["ceiling_high"]).all()
    summary = json.loads((tmp_path / "rsa" / "summary.json").read_text())
    assert set(summary["conclusion"]) == {"ir_mapped", "best"}
    assert len(summary["tests"]) == 6 and all(t["n_checkpoints"] == 4 for t in summary["tests"])
    assert (tmp_path / "rsa" / "trajectory.png").stat().st_size > 0
    # Different weights give different similarities (the checkpoints really differ).
    assert mapped.groupby("region")["ssm"].nunique().min() > 1

    status = main(["physiology", *common, "-o", str(tmp_path / "phys")])
    assert status == 0, capsys.readouterr().err
    physiology = pd.read_csv(tmp_path / "phys" / "physiology_trajectory.csv")
    assert sorted(set(physiology["epoch"])) == [0, 1, 2, 3]
    assert set(physiology["kind"]) == {"ir_mapped", "closest"}
    assert (tmp_path / "phys" / "physiology_before_after.png").stat().st_size > 0


def test_scores_are_cached_per_checkpoint(kept_run: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mnc.neuro.api import AnalysisOptions

    options = AnalysisOptions(methods=("pearson",), n_boot=3, n_splits=1, regressions=())
    recordings = small_recordings()
    first = score_run(TINY_SPEC, kept_run, recordings, tmp_path, options=options,
                      analyses=("rsa",))
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 4

    def no_forward(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("features were recomputed")

    monkeypatch.setattr("mnc.neuro.api.summarize_features", no_forward)
    again = score_run(TINY_SPEC, kept_run, recordings, tmp_path, options=options,
                      analyses=("rsa",))
    pd.testing.assert_frame_equal(first.trajectory, again.trajectory)


def test_a_folder_without_kept_checkpoints_is_one_message(tmp_path: Path, capsys: Any) -> None:
    recordings = tmp_path / "rec.npz"
    save_recordings(small_recordings(), recordings)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoints.json").write_text('[{"epoch": 0}]')
    status = main(["rsa", str(TINY_SPEC), "--weights", str(tmp_path / "run"), "--recordings",
                   str(recordings), "-o", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert status == 2 and "checkpoints.json: entry 0: missing step" in error
    (tmp_path / "plain").mkdir()
    status = main(["rsa", str(TINY_SPEC), "--weights", str(tmp_path / "plain"), "--recordings",
                   str(recordings), "-o", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert status == 2 and "a folder without checkpoints.json" in error
