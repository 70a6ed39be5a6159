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
from mnc.neuro.sources.recording_files import save_recordings
from mnc.neuro.trajectory import TRAJECTORY_COLUMNS, score_run
from tests.conftest import TINY_SPEC
from tests.neuro.small_models import small_recordings

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.neuro
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

    monkeypatch.setattr("mnc.neuro.cached_results.summarize_features", no_forward)
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


def test_several_runs_are_tested_together(kept_run: Path, tmp_path: Path, capsys: Any) -> None:
    """Runs given comma-separated are instances of one trajectory test (here the same run
    twice: no seed-to-seed variation, so the verdicts rest on the images alone)."""
    recordings = tmp_path / "rec.npz"
    save_recordings(small_recordings(), recordings)
    status = main(["rsa", str(TINY_SPEC), "--weights", f"{kept_run},{kept_run}",
                   "--recordings", str(recordings), "--splits", "2", "--regressions", "none",
                   "--methods", "spearman", "--json", "-o", str(tmp_path / "rsa")])
    out = capsys.readouterr().out
    assert status == 0, out
    printed = json.loads(out[out.index("{"):], parse_constant=lambda name: 1 / 0)
    assert len(printed["tests"]) == 6
    assert all(t["n_seeds"] == 2 and t["n_checkpoints"] == 4 for t in printed["tests"])
    table = pd.read_csv(tmp_path / "rsa" / "trajectory.csv")
    assert set(table["instance"]) == {"0:run", "1:run"}
