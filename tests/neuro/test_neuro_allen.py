"""The Allen side: synthetic caches read with h5py, responses, missing-data messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py", reason="needs the neuro extra (h5py)")

import h5py

from mnc.errors import UserFileError
from mnc.neuro.cache import CacheWarning
from mnc.neuro.regions import group_regions
from mnc.neuro.sources.allen import (
    AllenDependencyError,
    ResponseWindow,
    load_natural_scenes,
    trial_responses,
)
from mnc.neuro.sources.boc_session import SessionFile, StimulusTable
from mnc.neuro.sources.boc_tables import cache_layout, natural_scenes_experiments
from mnc.neuro.sources.synthetic import (
    DEFAULT_SESSIONS,
    SyntheticSession,
    synthetic_images,
    synthetic_rates,
    write_synthetic_cache,
)

pytestmark = pytest.mark.neuro


def test_noiseless_sessions_give_the_generating_rates(noiseless_cache: Path) -> None:
    data = load_natural_scenes(noiseless_cache)
    assert data.images.shape == (118, 46, 59)
    np.testing.assert_array_equal(data.images, synthetic_images())
    assert set(data.sessions) == {str(900_000_000 + i) for i in range(len(DEFAULT_SESSIONS))}
    first = data.take(np.flatnonzero(data.session == "900000000"))
    assert set(zip(first.area, first.cre_line, first.depth_um, first.layer, strict=True)) == {
        ("VISp", "Cux2-CreERT2", 175.0, "2/3")}
    assert first.responses.shape == (118, 6, 12)
    np.testing.assert_array_equal(first.cell_id, 900_000_000 * 100 + np.arange(12))
    rates = synthetic_rates(data.images, 12, seed=1)
    for trial in range(6):
        np.testing.assert_allclose(first.responses[:, trial], rates, atol=1e-5)


def test_selection_filters_area_and_cre_line(boc_cache: Path) -> None:
    data = load_natural_scenes(boc_cache, areas=["VISp"], cre_lines=["rorb-ires2-cre"])
    assert [(r.area, r.layer) for r in group_regions(data)] == [("VISp", "4")]
    with pytest.raises(UserFileError, match="no natural-scenes session matches"):
        load_natural_scenes(boc_cache, areas=["VISpm"])


def test_response_cache_is_reused(boc_cache: Path, tmp_path: Path) -> None:
    first = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    np.testing.assert_array_equal(first.responses, second.responses)
    assert first.fingerprint == second.fingerprint
    # A later selection whose first session is already cached still gets the images.
    wider = load_natural_scenes(boc_cache, areas=["VISl", "VISp"], response_cache=tmp_path)
    narrow = load_natural_scenes(boc_cache, areas=["VISp"], response_cache=tmp_path)
    assert narrow.images.shape == wider.images.shape == (118, 46, 59)
    assert narrow.fingerprint != wider.fingerprint
    # A damaged cache entry is computed again, not reported as the user's mistake.
    for entry in tmp_path.iterdir():
        entry.write_bytes(b"damaged")
    with pytest.warns(CacheWarning, match="unusable cache entry"):
        again = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    np.testing.assert_array_equal(again.responses, first.responses)
    np.testing.assert_array_equal(again.images, first.images)


def test_missing_session_file_is_named_with_fetch_command(tmp_path: Path) -> None:
    ids = write_synthetic_cache(tmp_path, sessions=DEFAULT_SESSIONS[:2], trials=4,
                                omit_files=[1])
    with pytest.raises(UserFileError) as error:
        load_natural_scenes(tmp_path)
    message = str(error.value)
    assert str(ids[1]) in message and str(ids[0]) not in message.split("ids")[1].split(";")[0]
    assert "get_ophys_experiment_data" in message and "--download" in message
    assert "pip install 'mnc[allen]'" in message
    data = load_natural_scenes(tmp_path, skip_missing=True)
    assert data.sessions == (str(ids[0]),)


def test_missing_tables_fail_before_any_network_use(tmp_path: Path) -> None:
    with pytest.raises(UserFileError, match="experiment_containers.json"):
        load_natural_scenes(tmp_path)
    with pytest.raises(UserFileError, match="lacks the folder"):
        load_natural_scenes(tmp_path / "absent")


def test_download_without_allensdk_names_the_extra(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "allensdk", None)
    monkeypatch.setitem(sys.modules, "allensdk.core", None)
    monkeypatch.setitem(sys.modules, "allensdk.core.brain_observatory_cache", None)
    with pytest.raises(AllenDependencyError, match=r"pip install 'mnc\[allen\]'"):
        load_natural_scenes(tmp_path / "new", allow_download=True)
    ids = write_synthetic_cache(tmp_path / "partial", sessions=DEFAULT_SESSIONS[:2], trials=3,
                                n_images=4, omit_files=[1])
    with pytest.raises(AllenDependencyError, match=r"--download needs allensdk"):
        load_natural_scenes(tmp_path / "partial", allow_download=True)
    # Nothing missing: --download has nothing to fetch and allensdk is not needed.
    data = load_natural_scenes(tmp_path / "partial", allow_download=True, areas=["VISp"],
                               cre_lines=["Cux2-CreERT2"])
    assert data.sessions == (str(ids[0]),)


def test_hand_written_records_need_every_image_twice(tmp_path: Path) -> None:
    write_synthetic_cache(tmp_path, sessions=[SyntheticSession("VISp", "Cux2", 175, cells=3)],
                          trials=1, n_images=5)
    with pytest.raises(UserFileError, match="at least 2 trials"):
        load_natural_scenes(tmp_path)
    records = json.loads((tmp_path / "ophys_experiments.json").read_text())
    assert records[0]["stimulus_name"] == "three_session_B"


def test_window_and_baseline() -> None:
    timestamps = np.arange(100) / 10.0  # 10 Hz
    dff = np.zeros((1, 100))
    dff[0, 20:25] = 2.0  # response to image 0 at frame 20
    dff[0, 60:65] = 4.0  # response to image 0 at frame 60
    dff[0, 10:20] = 1.0  # baseline before the first presentation
    table = StimulusTable(frame=np.array([0, -1, 0]), start=np.array([20, 40, 60]),
                          end=np.array([22, 42, 62]))
    plain = trial_responses(timestamps, dff, table, ResponseWindow(0.5), "test")
    np.testing.assert_allclose(plain[0, :, 0], [2.0, 4.0])
    based = trial_responses(timestamps, dff, table, ResponseWindow(0.5, baseline_s=1.0), "t")
    np.testing.assert_allclose(based[0, :, 0], [1.0, 4.0])


# ------------------------------------------------------------------ layout details

def _small_cache(folder: Path, sessions: int = 2) -> list[int]:
    return write_synthetic_cache(folder, sessions=DEFAULT_SESSIONS[:sessions], trials=3,
                                 n_images=4, image_height=6, image_width=7, noise_sd=0.0)


def test_manifest_paths_are_followed(tmp_path: Path) -> None:
    ids = _small_cache(tmp_path / "elsewhere", sessions=1)
    cache = tmp_path / "cache"
    cache.mkdir()
    manifest = {"manifest": [
        {"key": "BASEDIR", "type": "dir", "spec": "../elsewhere"},
        {"key": "EXPERIMENT_CONTAINERS", "type": "file", "spec": "experiment_containers.json",
         "parent_key": "BASEDIR"},
        {"key": "EXPERIMENTS", "type": "file", "spec": "ophys_experiments.json",
         "parent_key": "BASEDIR"},
        {"key": "EXPERIMENT_DATA", "type": "file", "spec": "ophys_experiment_data/%d.nwb",
         "parent_key": "BASEDIR"}], "manifest_version": "1.3"}
    (cache / "manifest.json").write_text(json.dumps(manifest))
    assert load_natural_scenes(cache).sessions == (str(ids[0]),)
    manifest["manifest"][1]["parent_key"] = "NOWHERE"
    (cache / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserFileError, match=r"manifest.json: manifest: no entry .*'NOWHERE'"):
        load_natural_scenes(cache)


def test_failed_sessions_and_containers_are_left_out(tmp_path: Path) -> None:
    ids = _small_cache(tmp_path, sessions=3)
    containers = json.loads((tmp_path / "experiment_containers.json").read_text())
    experiments = json.loads((tmp_path / "ophys_experiments.json").read_text())
    containers[0]["failed"] = True
    experiments[1]["experiment_container"]["failed"] = True
    del experiments[2]["failed"]  # optional, as for allensdk
    (tmp_path / "experiment_containers.json").write_text(json.dumps(containers))
    (tmp_path / "ophys_experiments.json").write_text(json.dumps(experiments))
    chosen = natural_scenes_experiments(cache_layout(tmp_path))
    assert [e.id for e in chosen] == [ids[2]]


def test_presentations_in_a_nested_group_are_sorted_by_onset(tmp_path: Path) -> None:
    path = tmp_path / "session.nwb"
    with h5py.File(path, "w") as nwb:
        group = nwb.create_group("stimulus/presentation/extra/natural_scenes_stimulus")
        group["data"] = np.array([[2], [0], [1]])
        group["frame_duration"] = np.array([[30.0, 37.0], [10.0, 17.0], [20.0, 27.0]])
    with SessionFile(path) as session:
        table = session.natural_scenes_table()
    np.testing.assert_array_equal(table.frame, [0, 1, 2])
    np.testing.assert_array_equal(table.start, [10, 20, 30])
    np.testing.assert_array_equal(table.end, [17, 27, 37])
