"""Brain Observatory session files cannot reach outside themselves (external links, external
raw storage, virtual datasets) and are held to the memory limit; absurd values are refused
with one message naming the file and dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="needs the neuro extra (h5py)")

from mnc.errors import UserFileError
from mnc.neuro.sources.allen import ResponseWindow, load_natural_scenes
from mnc.neuro.sources.boc_session import CELL_IDS, DFF_DATA, DFF_TIMESTAMPS
from tests.neuro.conftest import session_path

pytestmark = pytest.mark.neuro

GROUP = "stimulus/presentation/natural_scenes_stimulus"


def _outside(tmp_path: Path, values: np.ndarray) -> Path:
    path = tmp_path / "outside.h5"
    with h5py.File(path, "w") as other:
        other["data"] = values
        other.create_group("group")["cell_specimen_ids"] = np.arange(len(values))
    return path


def test_an_external_link_is_refused(session_cache: Path, tmp_path: Path) -> None:
    path = session_path(session_cache)
    with h5py.File(path, "a") as nwb:
        dff = nwb[DFF_DATA][()]
        outside = _outside(tmp_path, dff)
        del nwb[DFF_DATA]
        nwb[DFF_DATA] = h5py.ExternalLink(str(outside), "data")
    with pytest.raises(UserFileError, match=f"{path}: {DFF_DATA}: .*external link"):
        load_natural_scenes(session_cache)


def test_an_external_link_to_a_group_on_the_path_is_refused(
    session_cache: Path, tmp_path: Path
) -> None:
    path = session_path(session_cache)
    group = CELL_IDS.rsplit("/", 1)[0]
    with h5py.File(path, "a") as nwb:
        outside = _outside(tmp_path, nwb[CELL_IDS][()])
        del nwb[group]
        nwb[group] = h5py.ExternalLink(str(outside), "group")
    with pytest.raises(UserFileError, match="external link"):
        load_natural_scenes(session_cache)


def test_external_raw_storage_is_refused(session_cache: Path, tmp_path: Path) -> None:
    path = session_path(session_cache)
    raw = tmp_path / "raw.bin"
    with h5py.File(path, "a") as nwb:
        ids = nwb[CELL_IDS][()]
        raw.write_bytes(ids.astype("<i8").tobytes())
        del nwb[CELL_IDS]
        nwb.create_dataset(
            CELL_IDS, shape=ids.shape, dtype="<i8", external=[(str(raw), 0, ids.size * 8)]
        )
    with pytest.raises(UserFileError, match=f"{CELL_IDS}: .*external raw storage"):
        load_natural_scenes(session_cache)


def test_a_virtual_dataset_is_refused(session_cache: Path, tmp_path: Path) -> None:
    path = session_path(session_cache)
    with h5py.File(path, "a") as nwb:
        ids = nwb[CELL_IDS][()]
        outside = _outside(tmp_path, ids)
        layout = h5py.VirtualLayout(shape=ids.shape, dtype=ids.dtype)
        layout[:] = h5py.VirtualSource(str(outside), "group/cell_specimen_ids", shape=ids.shape)
        del nwb[CELL_IDS]
        nwb.create_virtual_dataset(CELL_IDS, layout)
    with pytest.raises(UserFileError, match=f"{CELL_IDS}: .*virtual dataset"):
        load_natural_scenes(session_cache)


def _replace(path: Path, name: str, value: np.ndarray) -> None:
    with h5py.File(path, "a") as nwb:
        del nwb[name]
        nwb[name] = value


@pytest.mark.parametrize("index", [1e300, 2.0**62, 10**12])
def test_an_absurd_image_index_is_refused(session_cache: Path, index: float) -> None:
    path = session_path(session_cache)
    with h5py.File(path, "r") as nwb:
        frames = nwb[f"{GROUP}/data"][()].astype(np.float64)
    frames[3] = index
    _replace(path, f"{GROUP}/data", frames if isinstance(index, float) else frames.astype(np.int64))
    with pytest.raises(UserFileError, match=f"{GROUP}/data: image index"):
        load_natural_scenes(session_cache)


def test_tiny_frame_intervals_are_refused(session_cache: Path) -> None:
    path = session_path(session_cache)
    with h5py.File(path, "r") as nwb:
        frames = nwb[DFF_TIMESTAMPS].shape[0]
    _replace(path, DFF_TIMESTAMPS, np.arange(frames) * 1e-300)
    with pytest.raises(UserFileError, match=f"{DFF_TIMESTAMPS}: .*frame interval"):
        load_natural_scenes(session_cache)


def test_a_window_longer_than_the_recording_is_bounded(session_cache: Path) -> None:
    with pytest.raises(UserFileError, match="onset lies after|longer than"):
        load_natural_scenes(session_cache, window=ResponseWindow(window_s=1e300))


def test_session_data_are_held_to_the_memory_limit(
    session_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dF/F is float16 on disk but becomes float64 sums: the limit counts what is made."""
    path = session_path(session_cache)
    with h5py.File(path, "r") as nwb:
        dff = nwb[DFF_DATA][()]
    _replace(path, DFF_DATA, dff.astype(np.float16))
    on_disk = dff.size * 2
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", str(on_disk * 4 / 2**20))
    with pytest.raises(UserFileError, match=f"{DFF_DATA}: .*MNC_MAX_MEMORY_MB"):
        load_natural_scenes(session_cache)


def test_a_group_name_that_is_not_utf8_is_named(session_cache: Path) -> None:
    path = session_path(session_cache)
    with h5py.File(path, "a") as nwb:
        nwb["stimulus/presentation"].create_group(b"bad\xff\xfe")
    data = load_natural_scenes(session_cache)
    assert data.responses.shape[0] == 4
