"""Malformed Brain Observatory cache files: each gets one message naming file and place."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py", reason="needs the neuro extra (h5py)")

import h5py

from mnc.errors import UserFileError
from mnc.neuro.sources.allen import load_natural_scenes
from mnc.neuro.sources.boc_session import (
    CELL_IDS,
    DFF_DATA,
    DFF_TIMESTAMPS,
    TEMPLATE,
)

pytestmark = pytest.mark.neuro
GROUP = "stimulus/presentation/natural_scenes_stimulus"


@pytest.fixture
def cache(session_cache: Path) -> Path:
    return session_cache


def _session(cache: Path) -> Path:
    return next((cache / "ophys_experiment_data").glob("*.nwb"))


def _replace(name: str, value: object) -> Callable[[h5py.File], None]:
    def edit(nwb: h5py.File) -> None:
        del nwb[name]
        nwb[name] = value
    return edit


def _delete(name: str) -> Callable[[h5py.File], None]:
    def edit(nwb: h5py.File) -> None:
        del nwb[name]
    return edit


def _second_group(nwb: h5py.File) -> None:
    nwb.copy(nwb[GROUP], "stimulus/presentation/other/natural_scenes_stimulus")


def _huge_template(nwb: h5py.File) -> None:
    del nwb[TEMPLATE]
    nwb.create_dataset(TEMPLATE, shape=(10**5, 10**4, 10**4), dtype="uint8",
                       chunks=(1, 100, 100))


def _group_for_dataset(nwb: h5py.File) -> None:
    del nwb[CELL_IDS]
    nwb.create_group(CELL_IDS)


SESSION_DEFECTS = {
    "dataset missing": (_delete(DFF_DATA), f"{DFF_DATA}: missing; expected a \\(cells, frames"),
    "dF/F of integers": (_replace(DFF_DATA, np.ones((12, 300), dtype=np.int32)),
                         f"{DFF_DATA}: expected a \\(cells, frames\\) float array, got int32"),
    "dF/F of text": (_replace(DFF_DATA, np.array([b"a", b"b"])),
                     f"{DFF_DATA}: expected a \\(cells, frames\\) float array"),
    "timestamps too short": (_replace(DFF_TIMESTAMPS, np.arange(10.0)),
                             f"{DFF_TIMESTAMPS}: 10 timestamps for .* dF/F frames"),
    "timestamps not increasing": (_replace(DFF_TIMESTAMPS, np.zeros(0)), "timestamps"),
    "one id short": (_replace(CELL_IDS, np.arange(11)), "11 cell ids for 12 dF/F traces"),
    "ids not integers": (_replace(CELL_IDS, np.arange(12) + 0.5),
                         f"{CELL_IDS}: expected a \\(cells,\\) integer array"),
    "ids a group": (_group_for_dataset, f"{CELL_IDS}: a group, not a dataset"),
    "no natural scenes": (_delete(GROUP), "no natural_scenes_stimulus group under "
                                          "stimulus/presentation"),
    "two natural-scenes groups": (_second_group, "2 natural-scenes groups"),
    "frame_duration wrong shape": (_replace(f"{GROUP}/frame_duration", np.zeros((12, 3))),
                                   f"{GROUP}/frame_duration: expected shape \\(12, 2\\)"),
    "fractional image index": (_replace(f"{GROUP}/data", np.full(12, 0.5)),
                               f"{GROUP}/data: expected whole image indices"),
    "image index below -1": (_replace(f"{GROUP}/data", np.full(12, -3)),
                             f"{GROUP}/data: image index -3"),
    "flat template": (_replace(TEMPLATE, np.zeros((4, 42), dtype=np.uint8)),
                      f"{TEMPLATE}: expected an \\(images, height, width\\)"),
    "template of other size": (_replace(TEMPLATE, np.zeros((9, 6, 7), dtype=np.uint8)),
                               "4 natural scenes presented but the template holds 9 images"),
    "huge declared template": (_huge_template, f"{TEMPLATE}: declares 10,000,000,000,000 "
                                               "bytes"),
}


@pytest.mark.parametrize("defect", list(SESSION_DEFECTS))
def test_malformed_session_file_is_named(cache: Path, defect: str) -> None:
    edit, pattern = SESSION_DEFECTS[defect]
    path = _session(cache)
    if defect == "timestamps not increasing":
        with h5py.File(path, "r") as nwb:
            frames = nwb[DFF_DATA].shape[1]
        edit = _replace(DFF_TIMESTAMPS, np.zeros(frames))
        pattern = f"{DFF_TIMESTAMPS}: expected finite, increasing times"
    with h5py.File(path, "a") as nwb:
        edit(nwb)
    with pytest.raises(UserFileError, match=pattern) as error:
        load_natural_scenes(cache)
    assert str(path) in str(error.value)


def test_file_that_is_not_hdf5(cache: Path) -> None:
    path = _session(cache)
    path.write_bytes(b"not an HDF5 file at all" * 10)
    with pytest.raises(UserFileError, match="not a readable HDF5 \\(NWB\\) session file") as error:
        load_natural_scenes(cache)
    assert str(path) in str(error.value)


def test_truncated_file(cache: Path) -> None:
    path = _session(cache)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(UserFileError, match="HDF5|cut short") as error:
        load_natural_scenes(cache)
    assert str(path) in str(error.value)


def _edit_table(cache: Path, name: str, change: Callable[[list], object]) -> Path:
    path = cache / name
    records = json.loads(path.read_text())
    result = change(records)
    path.write_text(json.dumps(records if result is None else result))
    return path


TABLE_DEFECTS: dict[str, tuple[str, Callable[[list], object], str]] = {
    "not a list": ("experiment_containers.json", lambda r: {"id": 1},
                   "expected a JSON list of records, got dict"),
    "record not an object": ("ophys_experiments.json", lambda r: [3],
                             "record 0: expected an object, got int"),
    "area missing": ("experiment_containers.json", lambda r: r[0].__delitem__("targeted_structure"),
                     "record 0: missing field 'targeted_structure'"),
    "depth as text": ("ophys_experiments.json",
                      lambda r: r[0].__setitem__("imaging_depth", "deep"),
                      "record 0: field 'imaging_depth': expected"),
    "fractional id": ("ophys_experiments.json", lambda r: r[0].__setitem__("id", 1.5),
                      "record 0: field 'id': expected an integer, got 1.5"),
    "line not an object": ("experiment_containers.json",
                           lambda r: r[0]["specimen"]["donor"].__setitem__(
                               "transgenic_lines", ["Cux2"]),
                           r"record 0.specimen.donor.transgenic_lines\[0\]: expected an object"),
    "failed as text": ("experiment_containers.json",
                       lambda r: r[0].__setitem__("failed", "no"),
                       "record 0: field 'failed': expected true or false"),
}


@pytest.mark.parametrize("defect", list(TABLE_DEFECTS))
def test_malformed_table_is_named(cache: Path, defect: str) -> None:
    name, change, pattern = TABLE_DEFECTS[defect]
    path = _edit_table(cache, name, change)
    with pytest.raises(UserFileError, match=pattern) as error:
        load_natural_scenes(cache)
    assert str(path) in str(error.value)


def test_table_that_is_not_json(cache: Path) -> None:
    (cache / "ophys_experiments.json").write_text('[{"id": 1,\n  oops}]')
    with pytest.raises(UserFileError, match=r"ophys_experiments.json:2:3: not valid JSON"):
        load_natural_scenes(cache)


@pytest.mark.parametrize("text, pattern", [
    ("{", "manifest.json:1:2: not valid JSON"),
    ('{"manifest": 3}', "expected an object with a 'manifest' list"),
    ('{"manifest": [{"key": "EXPERIMENTS", "type": "file"}]}',
     r"manifest\[0\]: expected text fields key, spec"),
    ('{"manifest": [{"key": "EXPERIMENTS", "type": "file", "spec": "x", '
     '"parent_key": "EXPERIMENTS"}]}', "parent_key cycle EXPERIMENTS -> EXPERIMENTS"),
])
def test_malformed_manifest_is_named(cache: Path, text: str, pattern: str) -> None:
    (cache / "manifest.json").write_text(text)
    with pytest.raises(UserFileError, match=pattern):
        load_natural_scenes(cache)
