"""The Allen side: synthetic files read through allensdk, responses, missing-data messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnc.errors import UserFileError
from mnc.neuro.allen import ResponseWindow, load_natural_scenes, trial_responses
from mnc.neuro.synthetic import (
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
    by_id = {r.experiment_id: r for r in data.recordings}
    assert len(by_id) == len(DEFAULT_SESSIONS)
    first = by_id[900_000_000]
    assert (first.area, first.cre_line, first.depth_um, first.layer) == (
        "VISp", "Cux2-CreERT2", 175, "2/3")
    assert first.responses.shape == (118, 6, 12)
    rates = synthetic_rates(data.images, 12, seed=1)
    for trial in range(6):
        np.testing.assert_allclose(first.responses[:, trial], rates, atol=1e-5)


def test_selection_filters_area_and_cre_line(boc_cache: Path) -> None:
    data = load_natural_scenes(boc_cache, areas=["VISp"], cre_lines=["Rorb-IRES2-Cre"])
    assert [(r.area, r.layer) for r in data.recordings] == [("VISp", "4")]
    with pytest.raises(UserFileError, match="no natural-scenes session matches"):
        load_natural_scenes(boc_cache, areas=["VISpm"])


def test_response_cache_is_reused(boc_cache: Path, tmp_path: Path) -> None:
    first = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    np.testing.assert_array_equal(first.recordings[0].responses, second.recordings[0].responses)
    assert first.fingerprint == second.fingerprint
    # A later selection whose first session is already cached still gets the images.
    wider = load_natural_scenes(boc_cache, areas=["VISl", "VISp"], response_cache=tmp_path)
    narrow = load_natural_scenes(boc_cache, areas=["VISp"], response_cache=tmp_path)
    assert narrow.images.shape == wider.images.shape == (118, 46, 59)
    assert narrow.fingerprint != wider.fingerprint


def test_missing_session_file_is_named_with_fetch_command(tmp_path: Path) -> None:
    ids = write_synthetic_cache(tmp_path, sessions=DEFAULT_SESSIONS[:2], trials=4,
                                omit_files=[1])
    with pytest.raises(UserFileError) as error:
        load_natural_scenes(tmp_path)
    message = str(error.value)
    assert str(ids[1]) in message and str(ids[0]) not in message.split("ids")[1].split(";")[0]
    assert "get_ophys_experiment_data" in message and "--download" in message
    data = load_natural_scenes(tmp_path, skip_missing=True)
    assert [r.experiment_id for r in data.recordings] == [ids[0]]


def test_missing_tables_fail_before_any_network_use(tmp_path: Path) -> None:
    with pytest.raises(UserFileError, match="experiment_containers.json"):
        load_natural_scenes(tmp_path)
    with pytest.raises(UserFileError, match="lacks the folder"):
        load_natural_scenes(tmp_path / "absent")


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
    table = pd.DataFrame({"frame": [0, -1, 0], "start": [20, 40, 60], "end": [22, 42, 62]})
    plain = trial_responses(timestamps, dff, table, ResponseWindow(0.5), "test")
    np.testing.assert_allclose(plain[0, :, 0], [2.0, 4.0])
    based = trial_responses(timestamps, dff, table, ResponseWindow(0.5, baseline_s=1.0), "t")
    np.testing.assert_allclose(based[0, :, 0], [1.0, 4.0])
