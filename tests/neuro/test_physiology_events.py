"""Physiology on detected events where the recordings hold them, on dF/F otherwise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pandas", reason="needs the neuro extra (pandas)")

import pandas as pd

from mnc.errors import UserFileError
from mnc.neuro.api import AnalysisOptions, NeuralSelection, run_physiology
from mnc.neuro.sources.allen import load_natural_scenes
from mnc.neuro.sources.boc_events import read_events_file
from mnc.neuro.sources.boc_session import SessionFile
from mnc.neuro.sources.recording_files import load_recordings, save_recordings
from mnc.neuro.sources.recordings import NeuralData
from tests.neuro.conftest import session_path

pytestmark = pytest.mark.neuro

FAST = AnalysisOptions(n_boot=0, n_splits=2, n_folds=3, min_reliability=0.2)
ANY_CELLS = NeuralSelection(min_cells=1)
# Trial-mean events of three cells over four images, both trials alike: lifetime
# sparseness 1 (one image), 0 (all alike) and, for [2, 1, 0, 0],
# (1 - (3/4)^2 / (5/4)) / (1 - 1/4) = 11/15; the median is 11/15.
EVENT_MEANS = np.array([[1.0, 1.0, 2.0], [0.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
MEDIAN_BY_HAND = 11 / 15


def _recordings(with_events: bool) -> NeuralData:
    rng = np.random.default_rng(3)
    responses = rng.normal(0.5, 0.3, (4, 2, 3)).astype(np.float32)
    events = np.repeat(EVENT_MEANS[:, None, :], 2, axis=1).astype(np.float32)
    return NeuralData.from_arrays(
        rng.integers(0, 255, (4, 8, 8)).astype(np.uint8), responses, "VISp",
        cre_line="Cux2-CreERT2", depth_um=175.0, events=events if with_events else None)


def _physiology(fake_loaded, data: NeuralData, folder: Path) -> tuple[pd.DataFrame, dict]:
    path = folder / "recordings.npz"
    save_recordings(data, path)
    report = run_physiology(fake_loaded, path, folder / "out", selection=ANY_CELLS,
                            options=FAST)
    summary = json.loads((folder / "out" / "summary.json").read_text())
    return report.tables["physiology"], summary


def test_events_in_the_recordings_are_what_physiology_measures(fake_loaded,
                                                                tmp_path) -> None:
    table, summary = _physiology(fake_loaded, _recordings(with_events=True), tmp_path)
    assert set(table["response_measure"]) == {"events"}
    assert summary["response_measure"] == "events"
    lifetime = table[table["metric"] == "lifetime_sparseness"]
    assert np.allclose(lifetime["median_neural"], MEDIAN_BY_HAND)
    matched = table[table["metric"] == "lifetime_sparseness_noise_matched"]
    assert np.allclose(matched["median_neural"], MEDIAN_BY_HAND)  # the same cells' events
    cells = pd.read_csv(tmp_path / "out" / "physiology_cells.csv")
    assert list(cells["response_measure"]) == ["events"]
    assert cells["noise_fraction"].iloc[0] == 0.0  # both trials alike: no event noise


def test_without_events_physiology_measures_dff(fake_loaded, tmp_path) -> None:
    data = _recordings(with_events=False)
    table, summary = _physiology(fake_loaded, data, tmp_path)
    assert set(table["response_measure"]) == {"dff"}
    assert summary["response_measure"] == "dff"
    from mnc.neuro.physiology import lifetime_sparseness

    expected = np.median(lifetime_sparseness(data.responses.mean(axis=1)))
    lifetime = table[table["metric"] == "lifetime_sparseness"]
    assert np.allclose(lifetime["median_neural"], expected)
    assert not np.isclose(expected, MEDIAN_BY_HAND)


@pytest.mark.parametrize("suffix", [".npz", ".nc"])
def test_events_survive_a_file_round_trip(tmp_path, suffix) -> None:
    if suffix == ".nc":
        pytest.importorskip("xarray", reason="NetCDF needs xarray")
        if not any(__import__("importlib").util.find_spec(m) for m in ("netCDF4", "h5netcdf")):
            pytest.skip("writing NetCDF needs netCDF4 or h5netcdf")
    data = _recordings(with_events=True)
    save_recordings(data, tmp_path / f"r{suffix}")
    again = load_recordings(tmp_path / f"r{suffix}")
    assert again.response_measure == "events"
    np.testing.assert_array_equal(again.events, data.events)
    assert again.fingerprint == data.fingerprint
    assert load_recordings(_saved(tmp_path, _recordings(False))).events is None


def _saved(folder: Path, data: NeuralData, **changes: np.ndarray) -> Path:
    arrays = {name: value for name in ("images", "responses", "area", "cre_line", "depth_um",
                                       "events")
              if (value := getattr(data, name)) is not None}
    arrays.update(changes)
    path = folder / "changed.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(("events", "wanted"), [
    (lambda e: -e, "negative magnitudes"),
    (lambda e: np.where(np.arange(3) == 1, np.nan, e), "expected a finite magnitude"),
    (lambda e: e[:, :1], "like responses"),
    (lambda e: np.full(e.shape, "x"), "expected numbers"),
])
def test_malformed_events_are_refused_with_one_message(tmp_path, events, wanted) -> None:
    good = _recordings(with_events=True)
    path = _saved(tmp_path, good, events=events(good.events.astype(np.float64)))
    with pytest.raises(UserFileError) as caught:
        load_recordings(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "events" in message and wanted in message
    assert "\n" not in message


# ----------------------------------------------------------------- Brain Observatory cache

def _write_events(cache: Path, events: np.ndarray | None = None) -> Path:
    session = session_path(cache)
    with SessionFile(session) as opened:
        _, dff = opened.dff()
    folder = cache / "ophys_experiment_events"
    folder.mkdir(exist_ok=True)
    path = folder / f"{session.stem}_events.npz"
    # The noiseless session's dF/F is >= 0: as events, each trial's mean must equal dF/F's.
    np.savez(path, ev=dff.astype(np.float64) if events is None else events)
    return path


def test_a_cache_with_an_events_file_gives_events(session_cache, tmp_path) -> None:
    without = load_natural_scenes(session_cache)
    assert without.response_measure == "dff" and without.events is None
    _write_events(session_cache)
    data = load_natural_scenes(session_cache, response_cache=tmp_path / "responses")
    assert data.response_measure == "events"
    assert data.events.shape == data.responses.shape
    np.testing.assert_allclose(data.events, data.responses, rtol=1e-6)
    assert data.fingerprint != without.fingerprint
    cached = load_natural_scenes(session_cache, response_cache=tmp_path / "responses")
    np.testing.assert_array_equal(cached.events, data.events)
    assert list((tmp_path / "responses").glob("*-events.npz"))


def test_events_files_are_read_as_warily_as_session_files(session_cache, tmp_path) -> None:
    path = _write_events(session_cache)
    frames = np.load(path)["ev"].shape[1]
    np.savez(path, ev=np.zeros((5, frames)))
    with pytest.raises(UserFileError, match=r"_events\.npz: array 'ev': shape \(5, "):
        load_natural_scenes(session_cache)
    np.savez(path, ev=-np.ones((12, frames)))
    with pytest.raises(UserFileError, match="finite event magnitudes >= 0"):
        load_natural_scenes(session_cache)
    elsewhere = tmp_path / "elsewhere.npz"
    np.savez(elsewhere, ev=np.zeros((12, frames)))
    path.unlink()
    os.symlink(elsewhere, path)
    with pytest.raises(UserFileError, match="symbolic link"):
        load_natural_scenes(session_cache)
    path.unlink()
    path.write_bytes(b"not a zip")
    with pytest.raises(UserFileError, match="not an .npz archive"):
        load_natural_scenes(session_cache)
    np.savez(path, ev=np.zeros((12, frames)))
    with pytest.raises(UserFileError, match="the limit is"):
        read_events_file(path, 12, frames, max_bytes=12 * frames * 8 + 1000)


def test_events_are_kept_only_where_every_session_has_them() -> None:
    from mnc.neuro.sources.recordings import SessionRecording

    responses = np.ones((4, 2, 3), np.float32)

    def session(name: str, events: np.ndarray | None) -> SessionRecording:
        return SessionRecording(session=name, area="VISp", cre_line="Cux2-CreERT2",
                                depth_um=175.0, layer="2/3", cell_ids=np.arange(3),
                                responses=responses, events=events)

    images = np.zeros((4, 8, 8), np.uint8)
    both = NeuralData.from_sessions(images, [session("a", responses), session("b", responses)])
    assert both.response_measure == "events" and both.events.shape == (4, 2, 6)
    one = NeuralData.from_sessions(images, [session("a", responses), session("b", None)])
    assert one.response_measure == "dff" and one.events is None
